package greptimekey_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	greptimepb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
)

func TestDataTypeOf(t *testing.T) {
	t.Parallel()
	for dt, want := range map[greptimepb.ColumnDataType]string{
		greptimepb.ColumnDataType_BOOLEAN:                 `{"Boolean":null}`,
		greptimepb.ColumnDataType_INT8:                    `{"Int8":{}}`,
		greptimepb.ColumnDataType_INT32:                   `{"Int32":{}}`,
		greptimepb.ColumnDataType_UINT64:                  `{"UInt64":{}}`,
		greptimepb.ColumnDataType_FLOAT64:                 `{"Float64":{}}`,
		greptimepb.ColumnDataType_STRING:                  `{"String":{"size_type":"Utf8"}}`,
		greptimepb.ColumnDataType_BINARY:                  `{"Binary":{"repr_type":"Binary"}}`,
		greptimepb.ColumnDataType_DATE:                    `{"Date":null}`,
		greptimepb.ColumnDataType_DATETIME:                `{"Timestamp":{"Microsecond":null}}`,
		greptimepb.ColumnDataType_TIMESTAMP_MILLISECOND:   `{"Timestamp":{"Millisecond":null}}`,
		greptimepb.ColumnDataType_TIME_NANOSECOND:         `{"Time":{"Nanosecond":null}}`,
		greptimepb.ColumnDataType_INTERVAL_MONTH_DAY_NANO: `{"Interval":{"MonthDayNano":null}}`,
		greptimepb.ColumnDataType_DECIMAL128:              `{"Decimal128":{"precision":38,"scale":10}}`,
	} {
		got, err := greptimekey.DataTypeOf(dt, nil)
		require.NoError(t, err, dt)
		require.Equal(t, want, string(got.JSON), dt)
	}

	dec := &greptimepb.ColumnDataTypeExtension{TypeExt: &greptimepb.ColumnDataTypeExtension_DecimalType{DecimalType: &greptimepb.DecimalTypeExtension{Precision: 10, Scale: 2}}}
	got, err := greptimekey.DataTypeOf(greptimepb.ColumnDataType_DECIMAL128, dec)
	require.NoError(t, err)
	require.Equal(t, `{"Decimal128":{"precision":10,"scale":2}}`, string(got.JSON))
	dec.GetDecimalType().Scale = 11
	_, err = greptimekey.DataTypeOf(greptimepb.ColumnDataType_DECIMAL128, dec)
	require.ErrorIs(t, err, greptimekey.ErrInvalidValue, "GreptimeDB asserts scale <= precision")

	jsonBinary := &greptimepb.ColumnDataTypeExtension{TypeExt: &greptimepb.ColumnDataTypeExtension_JsonType{}}
	for _, c := range []struct {
		dt  greptimepb.ColumnDataType
		ext *greptimepb.ColumnDataTypeExtension
	}{{greptimepb.ColumnDataType_JSON, nil}, {greptimepb.ColumnDataType_VECTOR, nil}, {greptimepb.ColumnDataType_LIST, nil}, {greptimepb.ColumnDataType_BINARY, jsonBinary}} {
		_, err := greptimekey.DataTypeOf(c.dt, c.ext)
		require.ErrorIs(t, err, greptimekey.ErrUnsupported, c.dt)
	}
	_, err = greptimekey.DataTypeOf(27, nil)
	require.ErrorIs(t, err, greptimekey.ErrInvalidValue)
	require.ErrorContains(t, err, "Unknown proto column datatype: 27")
}

func column(t *testing.T, def *greptimepb.ColumnDef) string {
	t.Helper()
	cs, err := greptimekey.ColumnSchemaFromDef(def)
	require.NoError(t, err)
	// As the outermost value's Encode writes it: without HTML escaping.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	require.NoError(t, enc.Encode(cs))
	return strings.TrimSuffix(buf.String(), "\n")
}

func TestColumnSchemaFromDef(t *testing.T) {
	t.Parallel()
	require.Equal(t, `{"name":"ts","data_type":{"Timestamp":{"Nanosecond":null}},"is_nullable":false,"is_time_index":true,"default_constraint":{"Function":"now()"},"metadata":{"greptime:time_index":"true"}}`,
		column(t, &greptimepb.ColumnDef{Name: "ts", DataType: greptimepb.ColumnDataType_TIMESTAMP_NANOSECOND,
			SemanticType: greptimepb.SemanticType_TIMESTAMP, DefaultConstraint: []byte(`{ "Function" : "now()" }`)}))
	require.Equal(t, `{"name":"msg","data_type":{"String":{"size_type":"Utf8"}},"is_nullable":true,"is_time_index":false,"default_constraint":{"Value":{"String":"a\"\n\u0001`+"\u2028"+`<>"}},"metadata":{"greptime:fulltext":"{}","greptime:storage:comment":"text"}}`,
		column(t, &greptimepb.ColumnDef{Name: "msg", DataType: greptimepb.ColumnDataType_STRING, IsNullable: true, Comment: "text",
			Options:           &greptimepb.ColumnOptions{Options: map[string]string{"fulltext": "{}", "other": "dropped"}},
			DefaultConstraint: []byte(`{"Value":{"String":"a\"\n\u0001\u2028\u003c>"}}`)}),
		"serde_json escapes only quotes, backslashes and control characters")
	require.Equal(t, `{"name":"n","data_type":{"UInt8":{}},"is_nullable":true,"is_time_index":false,"default_constraint":{"Value":"Null"},"metadata":{}}`,
		column(t, &greptimepb.ColumnDef{Name: "n", DataType: greptimepb.ColumnDataType_UINT8, IsNullable: true, DefaultConstraint: []byte(`{"Value":{"Null":null}}`)}))
	require.Contains(t, column(t, &greptimepb.ColumnDef{Name: "n", DataType: greptimepb.ColumnDataType_INT64, DefaultConstraint: []byte(`{"Value":{"Int64":-9223372036854775808}}`)}),
		`"default_constraint":{"Value":{"Int64":-9223372036854775808}}`)

	for _, c := range []struct {
		def     *greptimepb.ColumnDef
		refusal greptimekey.Refusal
		msg     string
	}{
		{&greptimepb.ColumnDef{Name: "a", DataType: greptimepb.ColumnDataType_INT32, DefaultConstraint: []byte(`{"Value":"Null"}`)}, greptimekey.RefusedInvalid, "Default value should not be null for non null column"},
		{&greptimepb.ColumnDef{Name: "a", DataType: greptimepb.ColumnDataType_INT32, DefaultConstraint: []byte(`{"Function":"now()"}`)}, greptimekey.RefusedInvalid, "return value of the function must has timestamp type"},
		{&greptimepb.ColumnDef{Name: "a", DataType: greptimepb.ColumnDataType_TIMESTAMP_SECOND, DefaultConstraint: []byte(`{"Function":"random()"}`)}, greptimekey.RefusedUnsupported, "Unsupported column default constraint expression: random()"},
		{&greptimepb.ColumnDef{Name: "a", DataType: greptimepb.ColumnDataType_INT8, DefaultConstraint: []byte(`{"Value":{"Int8":128}}`)}, greptimekey.RefusedInternal, "Failed to deserialize data"},
		{&greptimepb.ColumnDef{Name: "a", DataType: greptimepb.ColumnDataType_INT8, DefaultConstraint: []byte(`{"Value":{"Int8":1.0}}`)}, greptimekey.RefusedInternal, "Failed to deserialize data"},
		{&greptimepb.ColumnDef{Name: "a", DataType: greptimepb.ColumnDataType_INT8, DefaultConstraint: []byte(`{"Function":null}`)}, greptimekey.RefusedInternal, "Failed to deserialize data"},
		{&greptimepb.ColumnDef{Name: "a", DataType: greptimepb.ColumnDataType_INT16, DefaultConstraint: []byte(`{"Value":{"Int8":1}}`)}, greptimekey.RefusedInvalid, "column has type Int16 but default value has type Int8"},
		{&greptimepb.ColumnDef{Name: "a", DataType: greptimepb.ColumnDataType_DATE, DefaultConstraint: []byte(`{"Value":{"Date":1}}`)}, greptimekey.RefusedUnsupported, "default value of type Date"},
	} {
		_, err := greptimekey.ColumnSchemaFromDef(c.def)
		var e *greptimekey.ColumnDefError
		require.True(t, errors.As(err, &e), "%s: %v", c.def.GetDefaultConstraint(), err)
		require.Equal(t, c.refusal, e.Refusal, c.msg)
		require.Contains(t, e.Msg, c.msg)
	}
}

func TestFormatChronoUTC(t *testing.T) {
	t.Parallel()
	at := func(ns int) time.Time { return time.Date(2025, 9, 25, 1, 39, 28, ns, time.FixedZone("x", 3600)) }
	require.Equal(t, "2025-09-25T00:39:28Z", greptimekey.FormatChronoUTC(at(0)))
	require.Equal(t, "2025-09-25T00:39:28.700Z", greptimekey.FormatChronoUTC(at(700_000_000)))
	require.Equal(t, "2025-09-25T00:39:28.000500Z", greptimekey.FormatChronoUTC(at(500_000)))
	require.Equal(t, "2025-09-25T00:39:28.702584510Z", greptimekey.FormatChronoUTC(at(702_584_510)))
}

func TestNormalizeDataType(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`{"String":null}`:                      `{"String":{"size_type":"Utf8"}}`,
		`{"String":{}}`:                        `{"String":{"size_type":"Utf8"}}`,
		`{"String":{"size_type":"LargeUtf8"}}`: `{"String":{"size_type":"LargeUtf8"}}`,
		`{"Binary":null}`:                      `{"Binary":{"repr_type":"Binary"}}`,
		`{"Int32":{}}`:                         `{"Int32":{}}`,
		`{"Timestamp":{"Millisecond":null}}`:   `{"Timestamp":{"Millisecond":null}}`,
	} {
		require.Equal(t, want, string(greptimekey.NormalizeDataType(json.RawMessage(in))), in)
	}
}
