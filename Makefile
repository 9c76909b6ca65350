# postcall: `make run` does the main job (a worker processing sample calls),
# `make test` runs the whole suite against a real PostgreSQL.

GO        ?= go
BIN       := bin/postcall
# The database `make run` uses; created by `postcall migrate` when missing.
DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postcall?sslmode=disable
export DATABASE_URL

.PHONY: help build run test chaos fuzz bench vet fmt clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/postcall
	$(GO) build -o $(BIN) ./cmd/postcall

run: build ## migrate, load the example agents and calls, run the worker (Ctrl-C stops)
	./$(BIN) migrate
	./$(BIN) agents apply examples/agents.yaml
	./$(BIN) ingest -q examples/calls.jsonl
	@echo
	@if [ -n "$$POSTCALL_API_TOKEN" ]; then \
		echo "Console: http://$${POSTCALL_HTTP_ADDR:-127.0.0.1:8080}/login  (sign in with POSTCALL_API_TOKEN)"; \
	else \
		name=console-$$(date +%s); token=$$(./$(BIN) tokens create --name $$name --role admin 2>/dev/null) && \
		echo "Console: http://$${POSTCALL_HTTP_ADDR:-127.0.0.1:8080}/login  sign in with this admin token ($$name; shown once):" && \
		echo "  $$token"; \
	fi
	@echo "Worker starting. In another terminal: ./$(BIN) show demo-0002   (or --json)"
	@if [ -z "$$OPENAI_API_KEY" ] && [ -z "$$OPENAI_BASE_URL" ]; then \
		echo "No OPENAI_API_KEY: the DEMO model answers and its output is labelled demo."; \
		POSTCALL_DEMO_MODEL=1 ./$(BIN) worker; \
	else \
		./$(BIN) worker; \
	fi

test: ## run every test with the race detector (needs PostgreSQL; see TEST_DATABASE_URL)
	$(GO) test -race -count=1 -timeout 8m ./...

chaos: ## fault tests: kill -9, PostgreSQL restarts, model outage, leader changes (PostgreSQL, a few minutes)
	$(GO) test -tags chaos -count=1 -timeout 30m ./chaos/...

FUZZTIME ?= 15s
fuzz: ## run each fuzz target for FUZZTIME (ingest parsing, LLM-output validation, redaction)
	$(GO) test -run '^$$' -fuzz '^FuzzParseRecord$$' -fuzztime $(FUZZTIME) ./call
	$(GO) test -run '^$$' -fuzz '^FuzzValidateAnalysis$$' -fuzztime $(FUZZTIME) ./analysis
	$(GO) test -run '^$$' -fuzz '^FuzzTranscript$$' -fuzztime $(FUZZTIME) ./redact

bench: ## measure throughput, memory, caching, purge (PostgreSQL, a few minutes); writes bench/RESULTS.md; BENCH_FLAGS=-h for flags
	$(GO) run ./bench $(BENCH_FLAGS)

vet: ## go vet and gofmt check
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)

fmt: ## gofmt the tree
	gofmt -w $$(git ls-files '*.go')

clean: ## remove build output
	rm -rf bin
