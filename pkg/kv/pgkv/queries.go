package pgkv

// queries holds every SQL text of one table, built once in New so the quoted
// table name is never formatted into a statement per call, and so pgx's
// statement cache sees the same texts.
//
// Ranges compare bytea bytewise (memcmp, then length), which is exactly
// bytes.Compare; LIKE is never used, so keys holding %, _ or \ are plain bytes.
type queries struct {
	rangeOne, rangeOneKeys         string // k = $1
	rangeFrom, rangeFromKeys       string // k >= $1, LIMIT $2
	rangeBetween, rangeBetweenKeys string // $1 <= k < $2, LIMIT $3

	batchGet string // k = ANY($1)

	put      string // upsert ($1, $2)
	batchPut string // upsert unnest($1, $2)
	// lockPrev reads the current values of the keys in $1 and locks them, so
	// that in REPEATABLE READ the upsert after it replaces exactly those values
	// (a concurrent change or insert makes one of the two fail with 40001).
	lockPrev string

	batchDelete, batchDeletePrev     string // k = ANY($1)
	deleteOne, deleteOnePrev         string // k = $1
	deleteFrom, deleteFromPrev       string // k >= $1
	deleteBetween, deleteBetweenPrev string // $1 <= k < $2

	casAbsent  string // insert ($1, $2) if absent; returns (applied, current value)
	casPresent string // set v = $3 where v = $2; returns (applied, current value)
}

const (
	beginRepeatableRead = "BEGIN ISOLATION LEVEL REPEATABLE READ"
	beginReadCommitted  = "BEGIN ISOLATION LEVEL READ COMMITTED"
	commitStmt          = "COMMIT"
	rollbackStmt        = "ROLLBACK"
)

func newQueries(table string) *queries {
	sel := func(cols, where, tail string) string {
		return "SELECT " + cols + " FROM " + table + " WHERE " + where + tail
	}
	del := func(where string) string { return "DELETE FROM " + table + " WHERE " + where }
	delPrev := func(where string) string {
		return "WITH d AS (DELETE FROM " + table + " WHERE " + where + " RETURNING k, v) SELECT k, v FROM d ORDER BY k"
	}
	const (
		one     = "k = $1"
		from    = "k >= $1"
		between = "k >= $1 AND k < $2"
		anyKey  = "k = ANY($1::bytea[])"
	)
	upsert := " ON CONFLICT (k) DO UPDATE SET v = excluded.v"
	return &queries{
		rangeOne:         sel("k, v", one, ""),
		rangeOneKeys:     sel("k", one, ""),
		rangeFrom:        sel("k, v", from, " ORDER BY k LIMIT $2"),
		rangeFromKeys:    sel("k", from, " ORDER BY k LIMIT $2"),
		rangeBetween:     sel("k, v", between, " ORDER BY k LIMIT $3"),
		rangeBetweenKeys: sel("k", between, " ORDER BY k LIMIT $3"),

		batchGet: sel("k, v", anyKey, " ORDER BY k"),

		put:      "INSERT INTO " + table + " (k, v) VALUES ($1, $2)" + upsert,
		batchPut: "INSERT INTO " + table + " (k, v) SELECT k, v FROM unnest($1::bytea[], $2::bytea[]) AS i(k, v)" + upsert,
		lockPrev: sel("k, v", anyKey, " ORDER BY k FOR UPDATE"),

		batchDelete:       del(anyKey),
		batchDeletePrev:   delPrev(anyKey),
		deleteOne:         del(one),
		deleteOnePrev:     delPrev(one),
		deleteFrom:        del(from),
		deleteFromPrev:    delPrev(from),
		deleteBetween:     del(between),
		deleteBetweenPrev: delPrev(between),

		// Both CAS statements are single statements under READ COMMITTED. The
		// write decides on the latest committed row (ON CONFLICT sees rows the
		// snapshot does not; UPDATE re-checks v = $2 on the newest version and
		// keeps the row locked), so a success is exact. The current value comes
		// from the statement snapshot, which is the state at the statement's
		// start: when it explains the failure it is reported, and when it does
		// not (a concurrent change raced the snapshot) the caller runs the
		// statement again.
		casAbsent: "WITH ins AS (INSERT INTO " + table + " (k, v) VALUES ($1, $2) ON CONFLICT (k) DO NOTHING RETURNING 1) " +
			"SELECT EXISTS (SELECT 1 FROM ins), (SELECT coalesce(v, ''::bytea) FROM " + table + " WHERE k = $1)",
		casPresent: "WITH upd AS (UPDATE " + table + " SET v = $3 WHERE k = $1 AND v = $2 RETURNING 1) " +
			"SELECT EXISTS (SELECT 1 FROM upd), (SELECT coalesce(v, ''::bytea) FROM " + table + " WHERE k = $1)",
	}
}
