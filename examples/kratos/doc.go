// Package kratos holds no code: it is the Ory Kratos configuration that
// wires Kratos to Vigil (kratos.yml, identity.schema.json and the Jsonnet
// hook bodies in hooks/), and the tests that keep those files honest.
//
// The tests evaluate each Jsonnet body with go-jsonnet (the evaluator and
// version Kratos v26.2.0 uses, imports disabled as in Kratos) against hook
// contexts Kratos really sent (testdata/), and check that each body renders
// exactly Vigil's hook contract and nothing more. They also check that
// kratos.yml puts Vigil's hooks on every login and registration method and
// that docker-compose.yml redirects every one of them to the vigil
// container. With KRATOS_BIN (or kratos on PATH) they also run the real
// Kratos with kratos.yml and drive registration, login, settings and
// verification against a stand-in for Vigil.
//
// # Imports
//
// Tests only; nothing imports this package.
package kratos
