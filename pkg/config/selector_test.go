package config

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/selector"
)

func TestSelectorKey(t *testing.T) {
	t.Parallel()
	require.Equal(t, "round_robin", Default().Selector)

	o, err := Load(writeFile(t, "selector = \"lease_based\"\n"), nil, nil)
	require.NoError(t, err)
	require.Equal(t, "lease_based", o.Selector)
	require.NoError(t, o.Validate())

	o, err = Load("", nil, []string{"METASRV_SELECTOR=LoadBased"})
	require.NoError(t, err)
	require.Equal(t, "load_based", o.Selector, "GreptimeDB's variant name, spelt as the key's value")
	_, err = selector.New(o.Selector)
	require.NoError(t, err)

	o, err = Load(writeFile(t, "selector = \"random\"\n"), nil, nil)
	require.NoError(t, err, "Load leaves values to Validate")
	err = o.Validate()
	require.ErrorIs(t, err, ErrInvalidValue)
	require.EqualError(t, err, `config: selector: unknown selector "random" (expected round_robin, lease_based or load_based)`)

	_, err = Load(writeFile(t, "selector = 1\n"), nil, nil)
	require.Error(t, err, "a number is not a selector name")
}
