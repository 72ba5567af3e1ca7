// Package vigiltest holds test helpers shared by the packages that test the
// engine end to end: a clock to move, a sender that records what it was
// given, and openers for both real stores (PostgreSQL in its own schema,
// SQLite in a temporary file) with raw access for tests that must inspect
// or tamper with rows. Test code only.
package vigiltest
