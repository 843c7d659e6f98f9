package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// max_key_size defaults to 2KiB and, with store_key_prefix, must stay within
// the 2692 bytes PostgreSQL's B-tree index always accepts (kv.MaxStoredKeySize).
func TestValidateMaxKeySize(t *testing.T) {
	t.Parallel()
	require.Equal(t, 2*KiB, Default().MaxKeySize)
	for _, tc := range []struct {
		name   string
		mutate func(*Options)
		want   string // "" means valid
	}{
		{"zero", func(o *Options) { o.MaxKeySize = 0 }, "max_key_size: must be greater than 0, got 0B"},
		{"default with the longest prefix", func(o *Options) { o.StoreKeyPrefix = strings.Repeat("p", 2692-2048) }, ""},
		{"default with a prefix one byte too long", func(o *Options) { o.StoreKeyPrefix = strings.Repeat("p", 2692-2048+1) }, "max_key_size: 2KiB plus the 645 bytes of store_key_prefix is 2693 bytes, over the 2692 bytes"},
		{"over the index limit", func(o *Options) { o.MaxKeySize = 3 * KiB }, "max_key_size: 3KiB plus the 0 bytes of store_key_prefix is 3072 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := Default()
			tc.mutate(&o)
			err := o.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidValue)
			require.ErrorContains(t, err, tc.want)
		})
	}
}
