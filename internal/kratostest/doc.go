// Package kratostest runs a real Ory Kratos for tests: Start writes a
// configuration into the test's temporary directory, starts `kratos serve`
// on free ports, waits until it is ready and stops it when the test ends,
// printing its log when the test failed. The helpers on *Kratos drive
// native (API) registration and login flows and read identities through
// the admin API.
//
// It is for tests only: nothing outside _test.go files may import it.
//
// # The binary
//
// Kratos is not part of this repository. Bin finds a v26.2.0 binary built
// with -tags sqlite (needed for the in-memory and SQLite databases) through
// KRATOS_BIN or as kratos on PATH; without one, tests that need it skip
// with SkipMessage. KRATOS.md (shared with the team) says how to build one.
//
// # Configuration
//
// Options.ConfigDir (for example examples/kratos) is copied whole, so
// Jsonnet bodies and schemas resolve beside the configuration; without it
// a built-in configuration is used (password logins, email and phone
// traits, no web hooks). Options.Replace rewrites text in every copied
// file: point the hook URLs at a Vigil under test and set its api_key.
// Options.Overrides and the ports, base URLs and DSN Start chooses are
// written to a JSON file that Kratos loads after the configuration file
// (`-c kratos.yml -c kratostest.overrides.json`), so the configuration
// itself is never parsed here. Kratos gets an empty environment (plus
// Options.Env), so variables of the developer's shell cannot change it.
//
// # Imports
//
// The standard library only.
package kratostest
