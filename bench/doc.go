// Package bench measures Vigil's hot operations on PostgreSQL against their
// floor: the very SQL statements each operation issued, captured with a pgx
// tracer and replayed raw, one transaction per operation, with no logic
// around them. `make bench` runs it; docs/benchmarks.md records the figures.
package bench
