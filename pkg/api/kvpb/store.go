package kvpb

import (
	metasrvv1 "github.com/pgmetasrv/metasrv/pkg/api/metasrv/v1"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// RangeRequestFromPB decodes a Range request; serializable reports its
// consistency.
func RangeRequestFromPB(r *metasrvv1.RangeRequest) (req kv.RangeRequest, serializable bool, err error) {
	if r == nil {
		return kv.RangeRequest{}, false, errNilRequest("range request")
	}
	if serializable, err = Serializable(r.GetConsistency()); err != nil {
		return kv.RangeRequest{}, false, err
	}
	// A negative limit is no limit, as in etcd: kv.RangeRequest reads it so.
	return kv.RangeRequest{Key: r.GetKey(), RangeEnd: r.GetRangeEnd(), Limit: r.GetLimit(), KeysOnly: r.GetKeysOnly()}, serializable, nil
}

func RangeRequestToPB(req kv.RangeRequest, serializable bool) *metasrvv1.RangeRequest {
	return &metasrvv1.RangeRequest{
		Key: req.Key, RangeEnd: req.RangeEnd, Limit: req.Limit, KeysOnly: req.KeysOnly,
		Consistency: ConsistencyToPB(serializable),
	}
}

func RangeResponseToPB(resp kv.RangeResponse) *metasrvv1.RangeResponse {
	return &metasrvv1.RangeResponse{Kvs: KeyValuesToPB(resp.Kvs), More: resp.More}
}

func RangeResponseFromPB(r *metasrvv1.RangeResponse) kv.RangeResponse {
	return kv.RangeResponse{Kvs: KeyValuesFromPB(r.GetKvs()), More: r.GetMore()}
}

func PutRequestFromPB(r *metasrvv1.PutRequest) (kv.PutRequest, error) {
	if r == nil {
		return kv.PutRequest{}, errNilRequest("put request")
	}
	return kv.PutRequest{Key: r.GetKey(), Value: r.GetValue(), PrevKv: r.GetPrevKv()}, nil
}

func PutRequestToPB(req kv.PutRequest) *metasrvv1.PutRequest {
	return &metasrvv1.PutRequest{Key: req.Key, Value: req.Value, PrevKv: req.PrevKv}
}

func PutResponseToPB(resp kv.PutResponse) *metasrvv1.PutResponse {
	return &metasrvv1.PutResponse{PrevKv: KeyValueToPB(resp.PrevKv)}
}

func PutResponseFromPB(r *metasrvv1.PutResponse) kv.PutResponse {
	return kv.PutResponse{PrevKv: KeyValueFromPB(r.GetPrevKv())}
}

// BatchGetRequestFromPB decodes a BatchGet request; serializable reports its
// consistency.
func BatchGetRequestFromPB(r *metasrvv1.BatchGetRequest) (req kv.BatchGetRequest, serializable bool, err error) {
	if r == nil {
		return kv.BatchGetRequest{}, false, errNilRequest("batch get request")
	}
	if serializable, err = Serializable(r.GetConsistency()); err != nil {
		return kv.BatchGetRequest{}, false, err
	}
	return kv.BatchGetRequest{Keys: r.GetKeys()}, serializable, nil
}

func BatchGetRequestToPB(req kv.BatchGetRequest, serializable bool) *metasrvv1.BatchGetRequest {
	return &metasrvv1.BatchGetRequest{Keys: req.Keys, Consistency: ConsistencyToPB(serializable)}
}

func BatchGetResponseToPB(resp kv.BatchGetResponse) *metasrvv1.BatchGetResponse {
	return &metasrvv1.BatchGetResponse{Kvs: KeyValuesToPB(resp.Kvs)}
}

func BatchGetResponseFromPB(r *metasrvv1.BatchGetResponse) kv.BatchGetResponse {
	return kv.BatchGetResponse{Kvs: KeyValuesFromPB(r.GetKvs())}
}

func BatchPutRequestFromPB(r *metasrvv1.BatchPutRequest) (kv.BatchPutRequest, error) {
	if r == nil {
		return kv.BatchPutRequest{}, errNilRequest("batch put request")
	}
	kvs, err := keyValuesFromPB("kvs", r.GetKvs())
	if err != nil {
		return kv.BatchPutRequest{}, err
	}
	return kv.BatchPutRequest{Kvs: kvs, PrevKv: r.GetPrevKv()}, nil
}

func BatchPutRequestToPB(req kv.BatchPutRequest) *metasrvv1.BatchPutRequest {
	return &metasrvv1.BatchPutRequest{Kvs: KeyValuesToPB(req.Kvs), PrevKv: req.PrevKv}
}

func BatchPutResponseToPB(resp kv.BatchPutResponse) *metasrvv1.BatchPutResponse {
	return &metasrvv1.BatchPutResponse{PrevKvs: KeyValuesToPB(resp.PrevKvs)}
}

func BatchPutResponseFromPB(r *metasrvv1.BatchPutResponse) kv.BatchPutResponse {
	return kv.BatchPutResponse{PrevKvs: KeyValuesFromPB(r.GetPrevKvs())}
}

func BatchDeleteRequestFromPB(r *metasrvv1.BatchDeleteRequest) (kv.BatchDeleteRequest, error) {
	if r == nil {
		return kv.BatchDeleteRequest{}, errNilRequest("batch delete request")
	}
	return kv.BatchDeleteRequest{Keys: r.GetKeys(), PrevKv: r.GetPrevKv()}, nil
}

func BatchDeleteRequestToPB(req kv.BatchDeleteRequest) *metasrvv1.BatchDeleteRequest {
	return &metasrvv1.BatchDeleteRequest{Keys: req.Keys, PrevKv: req.PrevKv}
}

func BatchDeleteResponseToPB(resp kv.BatchDeleteResponse) *metasrvv1.BatchDeleteResponse {
	return &metasrvv1.BatchDeleteResponse{PrevKvs: KeyValuesToPB(resp.PrevKvs)}
}

func BatchDeleteResponseFromPB(r *metasrvv1.BatchDeleteResponse) kv.BatchDeleteResponse {
	return kv.BatchDeleteResponse{PrevKvs: KeyValuesFromPB(r.GetPrevKvs())}
}

func DeleteRangeRequestFromPB(r *metasrvv1.DeleteRangeRequest) (kv.DeleteRangeRequest, error) {
	if r == nil {
		return kv.DeleteRangeRequest{}, errNilRequest("delete range request")
	}
	return kv.DeleteRangeRequest{Key: r.GetKey(), RangeEnd: r.GetRangeEnd(), PrevKv: r.GetPrevKv()}, nil
}

func DeleteRangeRequestToPB(req kv.DeleteRangeRequest) *metasrvv1.DeleteRangeRequest {
	return &metasrvv1.DeleteRangeRequest{Key: req.Key, RangeEnd: req.RangeEnd, PrevKv: req.PrevKv}
}

func DeleteRangeResponseToPB(resp kv.DeleteRangeResponse) *metasrvv1.DeleteRangeResponse {
	return &metasrvv1.DeleteRangeResponse{Deleted: resp.Deleted, PrevKvs: KeyValuesToPB(resp.PrevKvs)}
}

func DeleteRangeResponseFromPB(r *metasrvv1.DeleteRangeResponse) kv.DeleteRangeResponse {
	return kv.DeleteRangeResponse{Deleted: r.GetDeleted(), PrevKvs: KeyValuesFromPB(r.GetPrevKvs())}
}

func CompareAndPutRequestFromPB(r *metasrvv1.CompareAndPutRequest) (kv.CompareAndPutRequest, error) {
	if r == nil {
		return kv.CompareAndPutRequest{}, errNilRequest("compare and put request")
	}
	return kv.CompareAndPutRequest{Key: r.GetKey(), Expect: r.GetExpect(), Value: r.GetValue()}, nil
}

func CompareAndPutRequestToPB(req kv.CompareAndPutRequest) *metasrvv1.CompareAndPutRequest {
	return &metasrvv1.CompareAndPutRequest{Key: req.Key, Expect: req.Expect, Value: req.Value}
}

func CompareAndPutResponseToPB(resp kv.CompareAndPutResponse) *metasrvv1.CompareAndPutResponse {
	return &metasrvv1.CompareAndPutResponse{Success: resp.Success, PrevKv: KeyValueToPB(resp.PrevKv)}
}

func CompareAndPutResponseFromPB(r *metasrvv1.CompareAndPutResponse) kv.CompareAndPutResponse {
	return kv.CompareAndPutResponse{Success: r.GetSuccess(), PrevKv: KeyValueFromPB(r.GetPrevKv())}
}
