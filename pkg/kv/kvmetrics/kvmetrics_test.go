package kvmetrics_test

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/kvmetrics"
	"github.com/pgmetasrv/metasrv/pkg/kv/kvtest"
	"github.com/pgmetasrv/metasrv/pkg/kv/memkv"
)

// The wrapper changes no behaviour: the whole contract holds through it.
func TestConformance(t *testing.T) {
	t.Parallel()
	m, err := kvmetrics.New(prometheus.NewRegistry())
	require.NoError(t, err)
	kvtest.Run(t, func(*testing.T) kv.Backend { return m.Wrap(memkv.New()) })
}

// sampleCount returns the observations of one series, or -1 if it is absent.
func sampleCount(t *testing.T, reg *prometheus.Registry, backend, op, result string) int {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "metasrv_kv_op_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labels(m) == [3]string{backend, op, result} {
				return int(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return -1
}

func labels(m *dto.Metric) [3]string {
	var out [3]string
	for _, l := range m.GetLabel() {
		switch l.GetName() {
		case "backend":
			out[0] = l.GetValue()
		case "op":
			out[1] = l.GetValue()
		case "result":
			out[2] = l.GetValue()
		}
	}
	return out
}

func TestObservesByOpAndResult(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := kvmetrics.New(reg)
	require.NoError(t, err)
	b := m.Wrap(memkv.New())
	ctx := t.Context()

	// Every series exists from the start.
	require.Equal(t, 0, sampleCount(t, reg, memkv.Name, kvmetrics.OpTxn, kvmetrics.ResultError))

	_, err = b.Put(ctx, kv.PutRequest{Key: []byte("a"), Value: []byte("1")})
	require.NoError(t, err)
	_, err = b.Range(ctx, kv.RangeRequest{Key: []byte("a")})
	require.NoError(t, err)
	_, err = b.Range(ctx, kv.RangeRequest{Key: []byte("a")})
	require.NoError(t, err)
	resp, err := b.CompareAndPut(ctx, kv.CompareAndPutRequest{Key: []byte("a"), Expect: []byte("wrong"), Value: []byte("2")})
	require.NoError(t, err)
	require.False(t, resp.Success)

	require.Equal(t, 1, sampleCount(t, reg, memkv.Name, kvmetrics.OpPut, kvmetrics.ResultOK))
	require.Equal(t, 2, sampleCount(t, reg, memkv.Name, kvmetrics.OpRange, kvmetrics.ResultOK))
	require.Equal(t, 1, sampleCount(t, reg, memkv.Name, kvmetrics.OpCompareAndPut, kvmetrics.ResultOK), "a failed compare is an answer, not an error")
	require.Equal(t, 0, sampleCount(t, reg, memkv.Name, kvmetrics.OpPut, kvmetrics.ResultError))
}

func TestErrorsAreCountedAsErrors(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := kvmetrics.New(reg)
	require.NoError(t, err)
	b := m.Wrap(failing{memkv.New()})
	_, err = b.Put(t.Context(), kv.PutRequest{Key: []byte("k"), Value: []byte("v")})
	require.ErrorIs(t, err, kv.ErrUnavailable)
	require.Equal(t, 1, sampleCount(t, reg, memkv.Name, kvmetrics.OpPut, kvmetrics.ResultError))
	require.Equal(t, 0, sampleCount(t, reg, memkv.Name, kvmetrics.OpPut, kvmetrics.ResultOK))
}

// failing refuses every Put as an unreachable backend would.
type failing struct{ *memkv.Store }

func (failing) Put(context.Context, kv.PutRequest) (kv.PutResponse, error) {
	return kv.PutResponse{}, errors.Join(kv.ErrUnavailable, errors.New("connection refused"))
}

func TestWrapKeepsReset(t *testing.T) {
	t.Parallel()
	m, err := kvmetrics.New(prometheus.NewRegistry())
	require.NoError(t, err)
	b := m.Wrap(memkv.New())
	r, ok := b.(kv.ResettableBackend)
	require.True(t, ok, "wrapping a resettable backend keeps Reset")
	_, err = r.Put(t.Context(), kv.PutRequest{Key: []byte("k"), Value: []byte("v")})
	require.NoError(t, err)
	r.Reset()
	e, err := kv.Get(t.Context(), r, []byte("k"))
	require.NoError(t, err)
	require.Nil(t, e)

	_, ok = m.Wrap(failing{memkv.New()}).(kv.ResettableBackend)
	require.True(t, ok, "failing embeds a resettable store")
	_, ok = m.Wrap(kv.WithLimits(memkv.New(), kv.Limits{})).(kv.ResettableBackend)
	require.False(t, ok, "a plain backend does not become resettable")
}

func TestRegisterTwiceFails(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	_, err := kvmetrics.New(reg)
	require.NoError(t, err)
	_, err = kvmetrics.New(reg)
	require.Error(t, err)
}
