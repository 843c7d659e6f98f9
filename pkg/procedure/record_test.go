package procedure

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Info carries the state kept in the record, a copy of it, up to 64 KiB;
// segmented or larger state is left out.
func TestInfoCarriesSmallInlineState(t *testing.T) {
	t.Parallel()
	rec := testRecord("p")
	require.Nil(t, rec.info().Data, "no state")

	rec.Data, rec.DataLen = []byte(`{"step":1}`), 10
	info := rec.info()
	require.JSONEq(t, `{"step":1}`, string(info.Data))
	info.Data[0] = '#'
	require.Equal(t, byte('{'), rec.Data[0], "the caller's copy")

	rec.Data = jsonBlob(maxInfoData + 1)
	require.Nil(t, rec.info().Data, "over 64 KiB")

	rec.Data, rec.Segments = nil, 2
	require.Nil(t, rec.info().Data, "in segments")
}
