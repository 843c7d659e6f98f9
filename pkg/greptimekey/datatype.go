package greptimekey

import (
	"encoding/json"
	"errors"
	"fmt"

	greptimepb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1"
)

// ErrUnsupported is the root of the errors about a column that GreptimeDB
// accepts but metasrv cannot write exactly as GreptimeDB would (a data type
// or a default value it does not map): metasrv refuses it rather than write
// an approximation.
var ErrUnsupported = errors.New("greptimekey: unsupported")

// Refusal says how GreptimeDB answers a column definition it refuses (its
// status code family), or that metasrv refuses one GreptimeDB takes.
type Refusal int

const (
	// RefusedInvalid: GreptimeDB refuses it as an invalid argument.
	RefusedInvalid Refusal = iota
	// RefusedUnsupported: GreptimeDB refuses it as unsupported, or metasrv
	// does not map it.
	RefusedUnsupported
	// RefusedInternal: GreptimeDB fails on it with an internal error (a
	// default constraint that does not decode).
	RefusedInternal
)

// ColumnDefError is a ColumnDef that has no ColumnSchema. Msg is the message
// GreptimeDB gives for the same refusal (for one metasrv does not map, it
// names what is not mapped).
type ColumnDefError struct {
	Refusal Refusal
	Msg     string
}

func (e *ColumnDefError) Error() string { return e.Msg }

// Unwrap is ErrUnsupported for a refusal as unsupported, else
// ErrInvalidValue.
func (e *ColumnDefError) Unwrap() error {
	if e.Refusal == RefusedUnsupported {
		return ErrUnsupported
	}
	return ErrInvalidValue
}

func refuse(r Refusal, format string, args ...any) *ColumnDefError {
	return &ColumnDefError{Refusal: r, Msg: fmt.Sprintf(format, args...)}
}

// DataType is a column's ConcreteDataType (datatypes/src/data_type.rs) as
// serde writes it, such as {"Int32":{}} or {"Timestamp":{"Millisecond":null}},
// with the name of its LogicalTypeId (type_id.rs), which GreptimeDB's default
// value checks compare and print.
type DataType struct {
	JSON    json.RawMessage
	Logical string
}

// IsTimestamp reports whether the type is one of the Timestamp types.
func (d DataType) IsTimestamp() bool {
	switch d.Logical {
	case "TimestampSecond", "TimestampMillisecond", "TimestampMicrosecond", "TimestampNanosecond":
		return true
	}
	return false
}

// Decimal128 bounds (common_decimal's DECIMAL128_MAX_PRECISION, and arrow's
// DECIMAL_DEFAULT_SCALE for a DECIMAL128 without an extension).
const (
	decimal128MaxPrecision = 38
	decimal128DefaultScale = 10
)

// scalarTypes are the ColumnDataTypes whose ConcreteDataType does not depend
// on the extension: their serde form and LogicalTypeId. Primitive numbers
// are empty structs ({}), the other unit structs serialise as null.
var scalarTypes = map[greptimepb.ColumnDataType]DataType{
	greptimepb.ColumnDataType_BOOLEAN:                 {json.RawMessage(`{"Boolean":null}`), "Boolean"},
	greptimepb.ColumnDataType_INT8:                    {json.RawMessage(`{"Int8":{}}`), "Int8"},
	greptimepb.ColumnDataType_INT16:                   {json.RawMessage(`{"Int16":{}}`), "Int16"},
	greptimepb.ColumnDataType_INT32:                   {json.RawMessage(`{"Int32":{}}`), "Int32"},
	greptimepb.ColumnDataType_INT64:                   {json.RawMessage(`{"Int64":{}}`), "Int64"},
	greptimepb.ColumnDataType_UINT8:                   {json.RawMessage(`{"UInt8":{}}`), "UInt8"},
	greptimepb.ColumnDataType_UINT16:                  {json.RawMessage(`{"UInt16":{}}`), "UInt16"},
	greptimepb.ColumnDataType_UINT32:                  {json.RawMessage(`{"UInt32":{}}`), "UInt32"},
	greptimepb.ColumnDataType_UINT64:                  {json.RawMessage(`{"UInt64":{}}`), "UInt64"},
	greptimepb.ColumnDataType_FLOAT32:                 {json.RawMessage(`{"Float32":{}}`), "Float32"},
	greptimepb.ColumnDataType_FLOAT64:                 {json.RawMessage(`{"Float64":{}}`), "Float64"},
	greptimepb.ColumnDataType_STRING:                  {json.RawMessage(`{"String":{"size_type":"Utf8"}}`), "String"},
	greptimepb.ColumnDataType_DATE:                    {json.RawMessage(`{"Date":null}`), "Date"},
	greptimepb.ColumnDataType_DATETIME:                {json.RawMessage(`{"Timestamp":{"Microsecond":null}}`), "TimestampMicrosecond"},
	greptimepb.ColumnDataType_TIMESTAMP_SECOND:        {json.RawMessage(`{"Timestamp":{"Second":null}}`), "TimestampSecond"},
	greptimepb.ColumnDataType_TIMESTAMP_MILLISECOND:   {json.RawMessage(`{"Timestamp":{"Millisecond":null}}`), "TimestampMillisecond"},
	greptimepb.ColumnDataType_TIMESTAMP_MICROSECOND:   {json.RawMessage(`{"Timestamp":{"Microsecond":null}}`), "TimestampMicrosecond"},
	greptimepb.ColumnDataType_TIMESTAMP_NANOSECOND:    {json.RawMessage(`{"Timestamp":{"Nanosecond":null}}`), "TimestampNanosecond"},
	greptimepb.ColumnDataType_TIME_SECOND:             {json.RawMessage(`{"Time":{"Second":null}}`), "TimeSecond"},
	greptimepb.ColumnDataType_TIME_MILLISECOND:        {json.RawMessage(`{"Time":{"Millisecond":null}}`), "TimeMillisecond"},
	greptimepb.ColumnDataType_TIME_MICROSECOND:        {json.RawMessage(`{"Time":{"Microsecond":null}}`), "TimeMicrosecond"},
	greptimepb.ColumnDataType_TIME_NANOSECOND:         {json.RawMessage(`{"Time":{"Nanosecond":null}}`), "TimeNanosecond"},
	greptimepb.ColumnDataType_INTERVAL_YEAR_MONTH:     {json.RawMessage(`{"Interval":{"YearMonth":null}}`), "IntervalYearMonth"},
	greptimepb.ColumnDataType_INTERVAL_DAY_TIME:       {json.RawMessage(`{"Interval":{"DayTime":null}}`), "IntervalDayTime"},
	greptimepb.ColumnDataType_INTERVAL_MONTH_DAY_NANO: {json.RawMessage(`{"Interval":{"MonthDayNano":null}}`), "IntervalMonthDayNano"},
}

// DataTypeOf is the ConcreteDataType GreptimeDB builds from a column's
// ColumnDataType and extension (api's ColumnDataTypeWrapper). JSON, Vector,
// List, Struct and Dictionary types, and a BINARY marked as JSON, are
// refused as unsupported: metasrv does not write them. A number that is no
// ColumnDataType is refused as GreptimeDB refuses it.
func DataTypeOf(dt greptimepb.ColumnDataType, ext *greptimepb.ColumnDataTypeExtension) (DataType, error) {
	if d, ok := scalarTypes[dt]; ok {
		return d, nil
	}
	switch dt {
	case greptimepb.ColumnDataType_BINARY:
		if _, isJSON := ext.GetTypeExt().(*greptimepb.ColumnDataTypeExtension_JsonType); isJSON {
			return DataType{}, refuse(RefusedUnsupported, "Unsupported operation: metasrv does not write columns of data type Json (a BINARY with a JSON extension)")
		}
		return DataType{JSON: json.RawMessage(`{"Binary":{"repr_type":"Binary"}}`), Logical: "Binary"}, nil
	case greptimepb.ColumnDataType_DECIMAL128:
		return decimal128(ext.GetDecimalType())
	case greptimepb.ColumnDataType_JSON, greptimepb.ColumnDataType_VECTOR, greptimepb.ColumnDataType_LIST,
		greptimepb.ColumnDataType_STRUCT, greptimepb.ColumnDataType_DICTIONARY:
		return DataType{}, refuse(RefusedUnsupported, "Unsupported operation: metasrv does not write columns of data type %s", dt)
	default:
		return DataType{}, refuse(RefusedInvalid, "Unknown proto column datatype: %d", int32(dt))
	}
}

// decimal128 is Decimal128Type: the extension's precision and scale,
// narrowed to u8 and i8 as GreptimeDB narrows them, or (38, 10) without one.
// GreptimeDB asserts the bounds (a panic); metasrv refuses the column.
func decimal128(ext *greptimepb.DecimalTypeExtension) (DataType, error) {
	precision, scale := uint8(decimal128MaxPrecision), int8(decimal128DefaultScale)
	if ext != nil {
		precision, scale = uint8(ext.GetPrecision()), int8(ext.GetScale())
	}
	if precision == 0 || precision > decimal128MaxPrecision {
		return DataType{}, refuse(RefusedInvalid, "Invalid arguments: decimal precision should be in [1, %d], got %d", decimal128MaxPrecision, precision)
	}
	if scale < 0 || int(scale) > int(precision) {
		return DataType{}, refuse(RefusedInvalid, "Invalid arguments: decimal scale should be in [0, precision %d], got %d", precision, scale)
	}
	raw := fmt.Sprintf(`{"Decimal128":{"precision":%d,"scale":%d}}`, precision, scale)
	return DataType{JSON: json.RawMessage(raw), Logical: "Decimal128"}, nil
}

// NormalizeDataType is a ConcreteDataType's JSON as GreptimeDB writes it
// back after reading it: the older forms of String and Binary (null, or an
// object without size_type / repr_type), which GreptimeDB reads as the
// defaults, become {"String":{"size_type":"Utf8"}} and
// {"Binary":{"repr_type":"Binary"}}. Anything else is returned as is.
func NormalizeDataType(raw json.RawMessage) json.RawMessage {
	tag, body, err := decodeVariant("ConcreteDataType", raw)
	if err != nil || (tag != "String" && tag != "Binary") {
		return raw
	}
	field, def := "size_type", "Utf8"
	if tag == "Binary" {
		field, def = "repr_type", "Binary"
	}
	var obj map[string]json.RawMessage
	if !isNull(body) {
		if json.Unmarshal(body, &obj) != nil || len(obj) > 1 {
			return raw
		}
		if _, ok := obj[field]; len(obj) == 1 && !ok {
			return raw
		}
	}
	value := json.RawMessage(`"` + def + `"`)
	if v, ok := obj[field]; ok {
		value = v
	}
	out, err := encodeVariant(tag, map[string]json.RawMessage{field: value})
	if err != nil {
		return raw
	}
	return out
}
