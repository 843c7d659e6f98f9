package kvpb

import (
	"fmt"

	metasrvv1 "github.com/pgmetasrv/metasrv/pkg/api/metasrv/v1"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

var compareOpsFromPB = map[metasrvv1.CompareOp]kv.CompareOp{
	metasrvv1.CompareOp_COMPARE_OP_EQUAL:     kv.CompareEqual,
	metasrvv1.CompareOp_COMPARE_OP_NOT_EQUAL: kv.CompareNotEqual,
	metasrvv1.CompareOp_COMPARE_OP_LESS:      kv.CompareLess,
	metasrvv1.CompareOp_COMPARE_OP_GREATER:   kv.CompareGreater,
}

var txnOpKindsFromPB = map[metasrvv1.TxnOpKind]kv.TxnOpKind{
	metasrvv1.TxnOpKind_TXN_OP_KIND_PUT:    kv.TxnPut,
	metasrvv1.TxnOpKind_TXN_OP_KIND_GET:    kv.TxnGet,
	metasrvv1.TxnOpKind_TXN_OP_KIND_DELETE: kv.TxnDelete,
}

func compareOpToPB(op kv.CompareOp) metasrvv1.CompareOp {
	for p, k := range compareOpsFromPB {
		if k == op {
			return p
		}
	}
	// An operator kv does not know stays invalid on the wire, so the server
	// refuses it instead of the client guessing.
	return metasrvv1.CompareOp_COMPARE_OP_UNSPECIFIED
}

func txnOpKindToPB(k kv.TxnOpKind) metasrvv1.TxnOpKind {
	for p, kind := range txnOpKindsFromPB {
		if kind == k {
			return p
		}
	}
	return metasrvv1.TxnOpKind_TXN_OP_KIND_UNSPECIFIED
}

// txnOpKindFromReply decodes the kind of a reply element; a kind the client
// does not know maps to -1, which no kv.TxnOpKind constant uses.
func txnOpKindFromReply(k metasrvv1.TxnOpKind) kv.TxnOpKind {
	if kind, ok := txnOpKindsFromPB[k]; ok {
		return kind
	}
	return -1
}

func compareFromPB(field string, c *metasrvv1.Compare) (kv.Compare, error) {
	if c == nil {
		return kv.Compare{}, invalid("%s must be set", field)
	}
	op, ok := compareOpsFromPB[c.GetOp()]
	if !ok {
		return kv.Compare{}, invalid("%s.op: unknown value %d (%s), want EQUAL, NOT_EQUAL, LESS or GREATER", field, int32(c.GetOp()), c.GetOp())
	}
	if c.GetTargetAbsent() && len(c.GetTarget()) > 0 {
		return kv.Compare{}, invalid("%s.target must be empty when target_absent is set", field)
	}
	return kv.Compare{Key: c.GetKey(), Op: op, Target: c.GetTarget(), TargetAbsent: c.GetTargetAbsent()}, nil
}

func txnOpFromPB(field string, o *metasrvv1.TxnOp) (kv.TxnOp, error) {
	if o == nil {
		return kv.TxnOp{}, invalid("%s must be set", field)
	}
	kind, ok := txnOpKindsFromPB[o.GetKind()]
	if !ok {
		return kv.TxnOp{}, invalid("%s.kind: unknown value %d (%s), want PUT, GET or DELETE", field, int32(o.GetKind()), o.GetKind())
	}
	if kind != kv.TxnPut && len(o.GetValue()) > 0 {
		return kv.TxnOp{}, invalid("%s.value is set on a %s operation; only PUT carries a value", field, kind)
	}
	return kv.TxnOp{Kind: kind, Key: o.GetKey(), Value: o.GetValue()}, nil
}

func txnOpsFromPB(branch string, ops []*metasrvv1.TxnOp) ([]kv.TxnOp, error) {
	if len(ops) == 0 {
		return nil, nil
	}
	out := make([]kv.TxnOp, len(ops))
	for i, o := range ops {
		op, err := txnOpFromPB(fmt.Sprintf("%s[%d]", branch, i), o)
		if err != nil {
			return nil, err
		}
		out[i] = op
	}
	return out, nil
}

// TxnRequestFromPB decodes a Txn request.
func TxnRequestFromPB(r *metasrvv1.TxnRequest) (kv.TxnRequest, error) {
	if r == nil {
		return kv.TxnRequest{}, errNilRequest("txn request")
	}
	var req kv.TxnRequest
	if n := len(r.GetCompare()); n > 0 {
		req.Compare = make([]kv.Compare, n)
		for i, c := range r.GetCompare() {
			cmp, err := compareFromPB(fmt.Sprintf("compare[%d]", i), c)
			if err != nil {
				return kv.TxnRequest{}, err
			}
			req.Compare[i] = cmp
		}
	}
	var err error
	if req.Success, err = txnOpsFromPB("success", r.GetSuccess()); err != nil {
		return kv.TxnRequest{}, err
	}
	if req.Failure, err = txnOpsFromPB("failure", r.GetFailure()); err != nil {
		return kv.TxnRequest{}, err
	}
	return req, nil
}

func txnOpsToPB(ops []kv.TxnOp) []*metasrvv1.TxnOp {
	if len(ops) == 0 {
		return nil
	}
	out := make([]*metasrvv1.TxnOp, len(ops))
	for i, o := range ops {
		out[i] = &metasrvv1.TxnOp{Kind: txnOpKindToPB(o.Kind), Key: o.Key, Value: o.Value}
	}
	return out
}

func TxnRequestToPB(req kv.TxnRequest) *metasrvv1.TxnRequest {
	out := &metasrvv1.TxnRequest{Success: txnOpsToPB(req.Success), Failure: txnOpsToPB(req.Failure)}
	if len(req.Compare) > 0 {
		out.Compare = make([]*metasrvv1.Compare, len(req.Compare))
		for i, c := range req.Compare {
			out.Compare[i] = &metasrvv1.Compare{Key: c.Key, Op: compareOpToPB(c.Op), Target: c.Target, TargetAbsent: c.TargetAbsent}
		}
	}
	return out
}

func TxnResponseToPB(resp kv.TxnResponse) *metasrvv1.TxnResponse {
	out := &metasrvv1.TxnResponse{Succeeded: resp.Succeeded}
	if len(resp.Responses) > 0 {
		out.Responses = make([]*metasrvv1.TxnOpResponse, len(resp.Responses))
		for i, r := range resp.Responses {
			out.Responses[i] = &metasrvv1.TxnOpResponse{Kind: txnOpKindToPB(r.Kind), Kvs: KeyValuesToPB(r.Kvs), Deleted: r.Deleted}
		}
	}
	return out
}

func TxnResponseFromPB(r *metasrvv1.TxnResponse) kv.TxnResponse {
	out := kv.TxnResponse{Succeeded: r.GetSucceeded()}
	if n := len(r.GetResponses()); n > 0 {
		out.Responses = make([]kv.TxnOpResponse, 0, n)
		for _, o := range r.GetResponses() {
			if o == nil {
				continue
			}
			out.Responses = append(out.Responses, kv.TxnOpResponse{
				Kind: txnOpKindFromReply(o.GetKind()), Kvs: KeyValuesFromPB(o.GetKvs()), Deleted: o.GetDeleted(),
			})
		}
	}
	return out
}
