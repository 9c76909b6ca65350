// Package analysis runs an agent's post-call analysis and QC prompts through
// any OpenAI-compatible Chat Completions API and turns the answers into typed
// fields, checklist verdicts and a QC score.
//
// The package is pure logic plus HTTP: no database, no job queue. Callers
// hand an [Analyzer] an agent plan, its version and one call's [Input]; they
// get back the result and a [RequestRecord] per LLM request so that the
// money spent is stored even when a run fails.
//
// # Prompt caching
//
// For one agent plan version every request starts with a byte-identical
// prefix: the strict JSON schema (sent as response_format, which providers
// place before the messages) and a system message built purely from the plan
// (agent prompt, field definitions or checklist, output rules). Everything
// that varies per call (call facts, contact data, transcript) goes into the
// user message after it. Requests carry a stable prompt_cache_key per agent,
// plan version and kind when the plan enables caching.
//
// # Long transcripts
//
// Before sending, the request's prompt size is estimated (see
// [EstimateTokens]). When the estimate plus the output budget exceeds the
// model's context window, nothing is sent and the run fails with
// [ErrContextTooLong]. This is deliberate: cutting a transcript silently
// would produce an analysis of a different call than the one stored, and a
// request the provider will reject only costs a round trip and a retry.
//
// # Output budgets
//
// A request's max_tokens is sized per plan version and kind from what its
// answers took (a [History] the caller reads from the store), or before
// there is one from the schema; an answer cut off at it is sent again once
// with the Analyzer's full budget. See budget.go.
//
// # Rate limits and flex
//
// [OpenAI] keeps request and token buckets in step with the provider's
// x-ratelimit-* headers, so that replicas sharing one key converge on it
// (see limits.go), and sends requests with service_tier flex when asked,
// falling back to the default tier after FlexFallbackAfter of "no flex
// capacity" answers.
//
// # Errors
//
// Provider failures are [*APIError]s. [RetryAfter] says whether a failure is
// transient and how long to wait; [IsPermanent] says retrying the same
// request cannot help. Errors never hold the API key or prompt text.
package analysis
