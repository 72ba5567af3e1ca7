// Package pgtest gives each test its own PostgreSQL schema, so store tests
// run in parallel against one real database without seeing each other.
//
// It is for tests only: nothing outside _test.go files may import it.
//
// The database comes from VIGIL_TEST_DATABASE_URL, by default
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
//
// # Imports
//
// pgx and the standard library; nothing else from this module.
package pgtest
