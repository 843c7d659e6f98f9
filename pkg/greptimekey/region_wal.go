package greptimekey

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// WAL providers, the "wal.provider" tag of common_wal's WalOptions.
const (
	WALRaftEngine = "raft_engine"
	WALKafka      = "kafka"
	WALNoop       = "noop"
)

// WALOptions is the WAL a region writes to (common_wal options.rs
// WalOptions), internally tagged:
//
//	{"wal.provider":"raft_engine"}
//	{"wal.provider":"kafka","wal.kafka.topic":"greptimedb_wal_topic_0"}
//	{"wal.provider":"noop"}
//
// GreptimeDB keeps each region's options encoded as such a string: in the
// region_wal_options of a __dn_table value and under "wal_options" in the
// region's CreateRequest options. A table with skip_wal gets noop, any other
// raft_engine, or a Kafka topic when the metasrv's WAL is Kafka.
type WALOptions struct {
	Provider   string // WALRaftEngine, WALKafka or WALNoop
	KafkaTopic string // for WALKafka only
}

// Encode returns the options as GreptimeDB writes them.
func (o WALOptions) Encode() ([]byte, error) { return o.MarshalJSON() }

func (o WALOptions) MarshalJSON() ([]byte, error) {
	switch o.Provider {
	case WALRaftEngine, WALNoop:
		return []byte(`{"wal.provider":"` + o.Provider + `"}`), nil
	case WALKafka:
		b := []byte(`{"wal.provider":"kafka","wal.kafka.topic":`)
		return append(appendString(b, o.KafkaTopic), '}'), nil
	default:
		return nil, fmt.Errorf("%w: unknown WAL provider %q", ErrInvalidValue, o.Provider)
	}
}

func (o *WALOptions) UnmarshalJSON(data []byte) error {
	const typ = "WalOptions"
	var provider string
	if err := decodeObject(typ, data, required("wal.provider", &provider)); err != nil {
		return err
	}
	switch provider {
	case WALRaftEngine, WALNoop:
		*o = WALOptions{Provider: provider}
	case WALKafka:
		var topic string
		if err := decodeObject(typ, data, required("wal.kafka.topic", &topic)); err != nil {
			return err
		}
		*o = WALOptions{Provider: WALKafka, KafkaTopic: topic}
	default:
		return &fieldError{typ: typ, path: "wal.provider",
			err: fmt.Errorf("unknown variant %q, want raft_engine, kafka or noop", provider)}
	}
	return nil
}

// ParseRegionWALOptions decodes the encoded options of a __dn_table value's
// region_wal_options, as ddl/utils.rs parse_region_wal_options does.
func ParseRegionWALOptions(encoded map[uint32]string) (map[uint32]WALOptions, error) {
	out := make(map[uint32]WALOptions, len(encoded))
	for number, s := range encoded {
		var o WALOptions
		if err := json.Unmarshal([]byte(s), &o); err != nil {
			return nil, fmt.Errorf("region %d wal options %q: %w", number, s, err)
		}
		out[number] = o
	}
	return out, nil
}

// TopicRegionPrefix is where GreptimeDB records which regions use which Kafka
// topic; raft_engine and noop regions have no such key.
const TopicRegionPrefix = "__topic_region/"

// TopicRegionKey is __topic_region/{topic}/{region_id}. Creating a table
// writes it with an empty value for each region on Kafka.
func TopicRegionKey(topic string, regionID uint64) []byte {
	return strconv.AppendUint([]byte(TopicRegionPrefix+topic+"/"), regionID, 10)
}
