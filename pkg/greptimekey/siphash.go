package greptimekey

import (
	"encoding/binary"
	"math/bits"
)

// FrontendNodeID is the id under which GreptimeDB files a frontend's node
// info: frontends are stateless and often all configured with the same id,
// so GreptimeDB derives one from the address instead (cluster.rs
// calculate_node_id): Rust's DefaultHasher over the &str, which is SipHash-1-3
// with both keys zero over the address bytes followed by one 0xFF byte (str's
// Hash writes the bytes, then 0xFF so that ("ab","c") and ("a","bc") differ).
//
// The DefaultHasher algorithm is not guaranteed across Rust releases; this is
// what GreptimeDB v1.1.4's toolchain computes, checked against its values.
func FrontendNodeID(addr string) uint64 {
	msg := make([]byte, 0, len(addr)+1)
	msg = append(msg, addr...)
	msg = append(msg, 0xff)
	return sipHash13(0, 0, msg)
}

// sipHash13 is SipHash with 1 compression round and 3 finalisation rounds
// (Aumasson and Bernstein's SipHash-c-d with c=1, d=3), as Rust's SipHasher13.
func sipHash13(k0, k1 uint64, msg []byte) uint64 {
	v0 := k0 ^ 0x736f6d6570736575
	v1 := k1 ^ 0x646f72616e646f6d
	v2 := k0 ^ 0x6c7967656e657261
	v3 := k1 ^ 0x7465646279746573
	round := func() {
		v0 += v1
		v1 = bits.RotateLeft64(v1, 13)
		v1 ^= v0
		v0 = bits.RotateLeft64(v0, 32)
		v2 += v3
		v3 = bits.RotateLeft64(v3, 16)
		v3 ^= v2
		v0 += v3
		v3 = bits.RotateLeft64(v3, 21)
		v3 ^= v0
		v2 += v1
		v1 = bits.RotateLeft64(v1, 17)
		v1 ^= v2
		v2 = bits.RotateLeft64(v2, 32)
	}
	n := len(msg)
	for len(msg) >= 8 {
		m := binary.LittleEndian.Uint64(msg)
		v3 ^= m
		round()
		v0 ^= m
		msg = msg[8:]
	}
	// The last block: the remaining bytes, little-endian, with the message
	// length (mod 256) in the top byte.
	last := uint64(n) << 56
	for i, c := range msg {
		last |= uint64(c) << (8 * i)
	}
	v3 ^= last
	round()
	v0 ^= last
	v2 ^= 0xff
	round()
	round()
	round()
	return v0 ^ v1 ^ v2 ^ v3
}
