package greptimekey

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	greptimepb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1"
)

// Column metadata keys (datatypes' column_schema.rs, and arrow's extension
// type keys), and the gRPC column options that map onto them
// (api/src/v1/column_def.rs).
const (
	MetaTimeIndex = "greptime:time_index"
	MetaComment   = "greptime:storage:comment"
)

var columnOptionKeys = [...]struct{ grpc, meta string }{
	{"fulltext", "greptime:fulltext"},
	{"inverted_index", "greptime:inverted_index"},
	{"skipping_index", "greptime:skipping_index"},
	{"vector_index", "greptime:vector_index"},
	{"ARROW:extension:name", "ARROW:extension:name"},
	{"ARROW:extension:metadata", "ARROW:extension:metadata"},
}

// ColumnSchemaFromDef is GreptimeDB's try_as_column_schema: the ColumnSchema
// a column definition sent by a frontend becomes. The data type follows
// DataTypeOf; the comment and the index and extension options go into the
// metadata; a TIMESTAMP column is a time index; the default constraint (the
// serde JSON of a ColumnDefaultConstraint) is checked against the column as
// GreptimeDB checks it. A default metasrv cannot rewrite exactly (a value of
// a type other than null, boolean, integer or string) is refused as
// unsupported. Every error is a *ColumnDefError.
func ColumnSchemaFromDef(def *greptimepb.ColumnDef) (ColumnSchema, error) {
	dt, err := DataTypeOf(def.GetDataType(), def.GetDatatypeExtension())
	if err != nil {
		return ColumnSchema{}, err
	}
	var constraint *defaultConstraint
	if len(def.GetDefaultConstraint()) > 0 {
		if constraint, err = parseDefault(def.GetDefaultConstraint()); err != nil {
			return ColumnSchema{}, err
		}
	}
	meta := map[string]string{}
	if def.GetComment() != "" {
		meta[MetaComment] = def.GetComment()
	}
	opts := def.GetOptions().GetOptions()
	for _, k := range columnOptionKeys {
		if v, ok := opts[k.grpc]; ok {
			meta[k.meta] = v
		}
	}
	timeIndex := def.GetSemanticType() == greptimepb.SemanticType_TIMESTAMP
	if timeIndex {
		meta[MetaTimeIndex] = "true"
	}
	cs := ColumnSchema{Name: def.GetName(), DataType: dt.JSON, IsNullable: def.GetIsNullable(), IsTimeIndex: timeIndex, Metadata: meta}
	if constraint != nil {
		if err := constraint.validate(dt, cs.IsNullable); err != nil {
			return ColumnSchema{}, err
		}
		cs.DefaultConstraint = constraint.json
	}
	return cs, nil
}

// The default functions GreptimeDB evaluates (constraint.rs).
var defaultFunctions = map[string]bool{"current_timestamp": true, "current_timestamp()": true, "now()": true}

// defaultConstraint is a decoded ColumnDefaultConstraint: a function, or a
// value with its LogicalTypeId ("Null" for null), and its serde JSON.
type defaultConstraint struct {
	function  string
	isValue   bool
	valueType string
	json      json.RawMessage
}

// validate is ColumnDefaultConstraint::validate.
func (c *defaultConstraint) validate(dt DataType, nullable bool) error {
	if !nullable && c.isValue && c.valueType == "Null" {
		return refuse(RefusedInvalid, "Default value should not be null for non null column")
	}
	if !c.isValue {
		if !defaultFunctions[c.function] {
			return refuse(RefusedUnsupported, "Unsupported column default constraint expression: %s", c.function)
		}
		if !dt.IsTimestamp() {
			return refuse(RefusedInvalid, "Incompatible default value type, reason: return value of the function must has timestamp type")
		}
		return nil
	}
	if c.valueType != "Null" && c.valueType != dt.Logical {
		return refuse(RefusedInvalid, "Incompatible default value type, reason: column has type %s but default value has type %s", dt.Logical, c.valueType)
	}
	return nil
}

// parseDefault decodes a ColumnDefaultConstraint as serde does (externally
// tagged: {"Function":"now()"}, {"Value":{"Int32":1}}, {"Value":"Null"}) and
// re-encodes it as serde writes it.
func parseDefault(raw []byte) (*defaultConstraint, error) {
	text := strings.ToValidUTF8(string(raw), "\uFFFD") // String::from_utf8_lossy
	undecodable := refuse(RefusedInternal, "Failed to deserialize data, json: %s", text)
	tag, body, err := singleVariant(json.RawMessage(text))
	if err != nil {
		return nil, undecodable
	}
	switch tag {
	case "Function":
		var fn string
		if err := json.Unmarshal(body, &fn); err != nil || isNull(body) {
			return nil, undecodable
		}
		return &defaultConstraint{function: fn, json: []byte(`{"Function":` + serdeString(fn) + `}`)}, nil
	case "Value":
		typ, value, err := parseValue(body)
		if err != nil {
			return nil, err
		}
		if typ == "" {
			return nil, undecodable
		}
		return &defaultConstraint{isValue: true, valueType: typ, json: []byte(`{"Value":` + value + `}`)}, nil
	default:
		return nil, undecodable
	}
}

// singleVariant splits {"Tag": body} (an enum's newtype variant); a bare
// string is a unit variant, returned with a null body.
func singleVariant(raw json.RawMessage) (string, json.RawMessage, error) {
	var unit string
	if json.Unmarshal(raw, &unit) == nil {
		return unit, json.RawMessage("null"), nil
	}
	return decodeVariant("ColumnDefaultConstraint", raw)
}

// valueIntBits are the integer Value variants and their width; negative
// widths are signed.
var valueIntBits = map[string]int{
	"Int8": -8, "Int16": -16, "Int32": -32, "Int64": -64,
	"UInt8": 8, "UInt16": 16, "UInt32": 32, "UInt64": 64,
}

// valueOther are the Value variants metasrv does not rewrite: their serde
// forms (ordered floats, decimals, times, nested values) are not reproduced
// here byte for byte.
var valueOther = map[string]bool{
	"Float32": true, "Float64": true, "Decimal128": true, "Binary": true, "Date": true,
	"Timestamp": true, "Time": true, "Duration": true, "IntervalYearMonth": true,
	"IntervalDayTime": true, "IntervalMonthDayNano": true, "List": true, "Struct": true, "Json": true,
}

// parseValue decodes a datatypes Value of the kinds metasrv rewrites; typ is
// its LogicalTypeId, empty when it does not decode.
func parseValue(body json.RawMessage) (typ, encoded string, err error) {
	tag, inner, err := singleVariant(body)
	if err != nil {
		return "", "", nil
	}
	switch {
	case tag == "Null" && isNull(inner):
		return "Null", `"Null"`, nil
	case tag == "Boolean":
		var b bool
		if json.Unmarshal(inner, &b) != nil || isNull(inner) {
			return "", "", nil
		}
		return tag, `{"Boolean":` + strconv.FormatBool(b) + `}`, nil
	case tag == "String":
		var s string
		if json.Unmarshal(inner, &s) != nil || isNull(inner) {
			return "", "", nil
		}
		return tag, `{"String":` + serdeString(s) + `}`, nil
	case valueIntBits[tag] != 0:
		n, ok := parseInteger(inner, valueIntBits[tag])
		if !ok {
			return "", "", nil
		}
		return tag, `{"` + tag + `":` + n + `}`, nil
	case valueOther[tag]:
		return "", "", refuse(RefusedUnsupported, "Unsupported operation: metasrv does not write a default value of type %s", tag)
	default:
		return "", "", nil
	}
}

// parseInteger reads a JSON integer of bits width (negative: signed) as
// serde reads one (no fraction, no exponent, in range) and writes it back.
func parseInteger(raw json.RawMessage, bits int) (string, bool) {
	text := string(bytes.TrimSpace(raw))
	if text == "-0" {
		text = "0" // serde_json reads -0 as the integer 0
	}
	if bits < 0 {
		n, err := strconv.ParseInt(text, 10, -bits)
		return strconv.FormatInt(n, 10), err == nil
	}
	n, err := strconv.ParseUint(text, 10, bits)
	return strconv.FormatUint(n, 10), err == nil
}

// serdeString writes s as serde_json does: only '"', '\\' and control
// characters are escaped (encoding/json also escapes U+2028 and U+2029).
func serdeString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 {
				const hex = "0123456789abcdef"
				b.WriteString(`\u00`)
				b.WriteByte(hex[r>>4])
				b.WriteByte(hex[r&0xf])
				continue
			}
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// FormatChronoUTC writes t as chrono writes a DateTime<Utc> with serde (the
// form of TableMeta's created_on and updated_on): RFC 3339 in UTC with a "Z",
// and 0, 3, 6 or 9 fractional digits, the fewest that hold t's nanoseconds:
// "2025-09-25T01:39:28.702584510Z".
func FormatChronoUTC(t time.Time) string {
	t = t.UTC()
	out := t.Format("2006-01-02T15:04:05")
	ns := t.Nanosecond()
	switch {
	case ns == 0:
	case ns%1_000_000 == 0:
		out += "." + pad(ns/1_000_000, 3)
	case ns%1_000 == 0:
		out += "." + pad(ns/1_000, 6)
	default:
		out += "." + pad(ns, 9)
	}
	return out + "Z"
}

func pad(n, width int) string {
	s := strconv.Itoa(n)
	return strings.Repeat("0", width-len(s)) + s
}
