package metasrvapi_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/memkv"
)

// A Range whose answer is over the max send size is refused with a message
// naming both sizes and the way out (a limit), instead of gRPC's bare "trying
// to send message larger than max"; a limited one that fits passes.
func TestRangeAnswerOverMaxSendNamesTheLimit(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store := memkv.New()
	fill(t, store)
	c := serveLimited(t, store, true)

	for _, serializable := range []bool{false, true} {
		var b kv.Backend = c
		if serializable {
			b = c.Serializable()
		}
		_, err := b.Range(ctx, kv.RangeRequest{Key: []byte("/big/"), RangeEnd: kv.PrefixEnd([]byte("/big/"))})
		require.Error(t, err)
		require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
		require.Regexp(t, `range answer of \d+ bytes is over grpc.max_send_message_size \(8192 bytes\): ask with a limit`, err.Error())

		resp, err := b.Range(ctx, kv.RangeRequest{Key: []byte("/big/"), RangeEnd: kv.PrefixEnd([]byte("/big/")), Limit: 4})
		require.NoError(t, err)
		require.Len(t, resp.Kvs, 4)
		require.True(t, resp.More)
	}
}

// A BatchGet whose answer would be over the max send size names the limit
// too, instead of failing with gRPC's bare refusal.
func TestBatchGetAnswerOverMaxSendNamesTheLimit(t *testing.T) {
	t.Parallel()
	store := memkv.New()
	keys := fill(t, store)
	c := serveLimited(t, store, true)
	_, err := c.BatchGet(t.Context(), kv.BatchGetRequest{Keys: keys})
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
	require.Regexp(t, `batch get answer of \d+ bytes is over grpc.max_send_message_size \(8192 bytes\): ask for fewer keys`, err.Error())
	resp, err := c.BatchGet(t.Context(), kv.BatchGetRequest{Keys: keys[:2]})
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 2)
}
