package config

import (
	"os"
	"sort"
	"testing"

	"github.com/pelletier/go-toml/v2"
	"github.com/stretchr/testify/require"
)

const exampleFile = "../../deploy/metasrv.example.toml"

// The example file documents every key with its default; it must load to
// exactly the defaults and name every key, so it cannot drift from the code.
func TestExampleFileHoldsEveryKeyWithItsDefault(t *testing.T) {
	t.Parallel()
	o, err := Load(exampleFile, nil, nil)
	require.NoError(t, err)
	require.Equal(t, Default(), o)

	raw, err := os.ReadFile(exampleFile)
	require.NoError(t, err)
	var tree map[string]any
	require.NoError(t, toml.Unmarshal(raw, &tree))
	var documented []string
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			if sub, ok := v.(map[string]any); ok {
				walk(prefix+k+".", sub)
				continue
			}
			documented = append(documented, prefix+k)
		}
	}
	walk("", tree)
	want := Keys()
	sort.Strings(want)
	sort.Strings(documented)
	require.Equal(t, want, documented)
}
