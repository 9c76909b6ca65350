// Package chaos holds postcall's fault tests. They run the real binary
// (`postcall worker`, built once per test run) as child processes against
// PostgreSQL, a fake OpenAI endpoint (analysis/openaitest) and Standard
// Webhooks receivers in the test process, inject faults and check what a
// platform team relies on: every call reaches done, no analysis is paid for
// twice beyond the requests in flight at a crash, every delivery reaches its
// receiver under one webhook-id, periodic jobs run once however many workers
// share the database, and the logs carry no personal data or secret.
//
// The tests that take a few seconds (several workers on one database, the
// log audit of a full run) run in `make test`. The long ones (kill -9 of the
// worker, a PostgreSQL restart on a throwaway cluster, a model endpoint that
// rate-limits and then goes down for a minute, periodic jobs across leader
// changes) have the build tag chaos and run with `make chaos`.
//
// Each test owns a schema of the test database (TEST_DATABASE_URL, as
// internal/dbtest), or a PostgreSQL cluster of its own for the restart
// test. CHAOS_KEEP_LOGS=DIR keeps every test's logs and inputs in DIR.
package chaos
