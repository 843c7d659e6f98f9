package instruction

import (
	"testing"

	"github.com/stretchr/testify/require"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
)

func replyRoundTrip(t *testing.T, r Reply, want string) {
	t.Helper()
	b, err := EncodeReply(r)
	require.NoError(t, err)
	require.Equal(t, want, string(b))
	back, err := DecodeReply(b)
	require.NoError(t, err)
	require.Equal(t, r, back)
}

func TestEncodeReplyMatchesGreptimeDB(t *testing.T) {
	t.Parallel()
	// instruction.rs:1203
	replyRoundTrip(t, DowngradeRegionsReply{Replies: []DowngradeRegionReply{{RegionID: NewRegionID(1024, 1), Exists: true}}},
		`{"type":"downgrade_regions","replies":[{"region_id":4398046511105,"last_entry_id":null,"metadata_last_entry_id":null,"exists":true,"error":null}]}`)
	// instruction.rs:1216
	replyRoundTrip(t, UpgradeRegionsReply{Replies: []UpgradeRegionReply{{RegionID: NewRegionID(1024, 1), Ready: true, Exists: true}}},
		`{"type":"upgrade_regions","replies":[{"region_id":4398046511105,"ready":true,"exists":true,"error":null}]}`)
	// The same derive (tag first, then the struct's fields in order); no
	// literal in GreptimeDB's tests.
	replyRoundTrip(t, OpenRegionsReply{Result: true}, `{"type":"open_regions","result":true,"error":null}`)
	replyRoundTrip(t, CloseRegionsReply{Error: new("region busy")}, `{"type":"close_regions","result":false,"error":"region busy"}`)
	replyRoundTrip(t, FlushRegionsReply{Results: []FlushResult{{RegionID: NewRegionID(1024, 1)}, {RegionID: NewRegionID(1024, 2), Err: new("flush failed")}}},
		`{"type":"flush_regions","results":[[4398046511105,{"Ok":null}],[4398046511106,{"Err":"flush failed"}]],"overall_success":false}`)
	replyRoundTrip(t, DowngradeRegionsReply{Replies: []DowngradeRegionReply{{RegionID: 1, LastEntryID: new(uint64(10)), MetadataLastEntryID: new(uint64(3)), Exists: true}}},
		`{"type":"downgrade_regions","replies":[{"region_id":1,"last_entry_id":10,"metadata_last_entry_id":3,"exists":true,"error":null}]}`)
	b, err := EncodeReply(UpgradeRegionsReply{})
	require.NoError(t, err)
	require.Equal(t, `{"type":"upgrade_regions","replies":[]}`, string(b))
}

func TestDecodeReplyLegacyForms(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		want     Reply
	}{
		{"instruction.rs:1285", `{"result":true,"error":null,"type":"close_region"}`, CloseRegionsReply{Result: true}},
		{"instruction.rs:1295", `{"result":true,"error":null,"type":"open_region"}`, OpenRegionsReply{Result: true}},
		{"instruction.rs:1305", `{"region_id":4398046511105,"last_entry_id":null,"metadata_last_entry_id":null,"exists":true,"error":null,"type":"downgrade_region"}`,
			DowngradeRegionsReply{Replies: []DowngradeRegionReply{{RegionID: NewRegionID(1024, 1), Exists: true}}}},
		{"instruction.rs:1320", `{"region_id":4398046511105,"ready":true,"exists":true,"error":null,"type":"upgrade_region"}`,
			UpgradeRegionsReply{Replies: []UpgradeRegionReply{{RegionID: NewRegionID(1024, 1), Ready: true, Exists: true}}}},
		{"no region_id (older datanodes)", `{"type":"upgrade_regions","ready":false,"exists":false}`,
			UpgradeRegionsReply{Replies: []UpgradeRegionReply{{}}}},
		{"error absent", `{"type":"open_regions","result":false}`, OpenRegionsReply{}},
	} {
		got, err := DecodeReply([]byte(tc.in))
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.want, got, tc.name)
	}
}

func TestDecodeReplyRefuses(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		`{"result":true}`,
		`{"type":1,"result":true}`,
		`{"type":"open_regions"}`,
		`{"type":"open_regions","result":null}`,
		`{"type":"upgrade_regions","replies":[{"ready":true}]}`,
		`{"type":"downgrade_regions","replies":null}`,
		`{"type":"flush_regions","results":[[1]],"overall_success":true}`,
		`{"type":"flush_regions","results":[[1,{"Ok":1}]],"overall_success":true}`,
		`{"type":"flush_regions","results":[[1,{"Maybe":null}]],"overall_success":true}`,
		`{"type":"flush_regions","results":[[1,"Ok"]],"overall_success":true}`,
		`{"type":"flush_regions","results":[]}`,
		`{"type":"suspend"}`,
		`[]`,
	} {
		_, err := DecodeReply([]byte(in))
		require.ErrorIs(t, err, ErrInvalid, in)
	}
	_, err := DecodeReply([]byte(`{"type":"gc_regions"}`))
	require.ErrorIs(t, err, ErrUnsupported)
}

func TestMessages(t *testing.T) {
	t.Parallel()
	req, err := NewMessage("Close downgraded regions: [4398046511105(1024, 1)]", "Metasrv@10.0.0.1:3002", "Datanode-2@10.0.0.2:4001", 1700, CloseRegions{ident()})
	require.NoError(t, err)
	require.Zero(t, req.GetId(), "the mailbox sets the id")
	require.NotNil(t, req.GetHeader(), "json_message always sets a header")
	require.Equal(t, `{"CloseRegions":[{"datanode_id":2,"table_id":1024,"region_number":1,"engine":"mito2"}]}`, req.GetJson())
	got, err := FromMessage(req)
	require.NoError(t, err)
	require.Equal(t, CloseRegions{ident()}, got)

	req.Id = 42
	reply, err := ReplyMessage(req, CloseRegionsReply{Result: true}, 1800)
	require.NoError(t, err)
	require.Equal(t, uint64(42), reply.GetId())
	require.Equal(t, req.GetSubject(), reply.GetSubject())
	require.Equal(t, "Datanode-2@10.0.0.2:4001", reply.GetFrom())
	require.Equal(t, "Metasrv@10.0.0.1:3002", reply.GetTo())
	require.Nil(t, reply.GetHeader(), "replies carry no tracing context")
	require.Equal(t, int64(1800), reply.GetTimestampMillis())
	r, err := ReplyFromMessage(reply)
	require.NoError(t, err)
	require.Equal(t, CloseRegionsReply{Result: true}, r)

	_, err = ReplyFromMessage(&metapb.MailboxMessage{Id: 3})
	require.ErrorIs(t, err, ErrInvalid)
	_, err = FromMessage(nil)
	require.ErrorIs(t, err, ErrInvalid)
}
