-- The key-value table: the layout of GreptimeDB's postgres_store. Keys and
-- values are arbitrary bytes; range scans compare keys bytewise (bytea
-- ordering), which the primary key index serves. An existing table of
-- exactly this layout (GreptimeDB's own) is adopted instead: see adopt.go.
CREATE TABLE {{.Table}} (
    k bytea PRIMARY KEY,
    v bytea
);
