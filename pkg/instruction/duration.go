package instruction

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/pgmetasrv/metasrv/pkg/humantime"
)

// GreptimeDB writes durations two ways: serde's own form for a
// std::time::Duration, {"secs":1,"nanos":0}, and humantime_serde's string,
// "1s", where the field says #[serde(with = "humantime_serde")].

const nanosPerSec = uint64(time.Second)

// serdeDuration is a time.Duration in serde's form.
type serdeDuration time.Duration

func (d serdeDuration) MarshalJSON() ([]byte, error) {
	if d < 0 {
		return nil, fmt.Errorf("negative duration %s: GreptimeDB's Duration is unsigned", time.Duration(d))
	}
	ns := uint64(d)
	return encode(struct {
		Secs  uint64 `json:"secs"`
		Nanos uint32 `json:"nanos"`
	}{ns / nanosPerSec, uint32(ns % nanosPerSec)})
}

// UnmarshalJSON takes the map form, which serde writes, and the [secs,
// nanos] sequence serde also reads; nanos over a second carry into secs, as
// Duration::new does. serde refuses unknown fields here.
func (d *serdeDuration) UnmarshalJSON(data []byte) error {
	var secs uint64
	var nanos uint32
	var pair []json.RawMessage
	if json.Unmarshal(data, &pair) == nil && pair != nil {
		if len(pair) != 2 {
			return fmt.Errorf("duration: want [secs, nanos], got %d elements", len(pair))
		}
		if err := decodeFields("Duration", map[string]json.RawMessage{"secs": pair[0], "nanos": pair[1]},
			required("secs", &secs), required("nanos", &nanos)); err != nil {
			return err
		}
	} else {
		obj, err := object("Duration", data)
		if err != nil {
			return err
		}
		for k := range obj {
			if k != "secs" && k != "nanos" {
				return fmt.Errorf("duration: unknown field %q, expected `secs` or `nanos`", k)
			}
		}
		if err := decodeFields("Duration", obj, required("secs", &secs), required("nanos", &nanos)); err != nil {
			return err
		}
	}
	secs, rest := secs, uint64(nanos)
	if secs > (math.MaxInt64-rest)/nanosPerSec {
		return fmt.Errorf("duration: %d s %d ns is longer than %s", secs, nanos, time.Duration(math.MaxInt64))
	}
	*d = serdeDuration(secs*nanosPerSec + rest)
	return nil
}

// humanDuration is a time.Duration in humantime's form.
type humanDuration time.Duration

func (d humanDuration) MarshalJSON() ([]byte, error) {
	s, err := humantime.Format(time.Duration(d))
	if err != nil {
		return nil, err
	}
	return encode(s)
}

func (d *humanDuration) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("want a duration string such as \"1s\": %w", err)
	}
	v, err := humantime.Parse(s)
	if err != nil {
		return err
	}
	*d = humanDuration(v)
	return nil
}
