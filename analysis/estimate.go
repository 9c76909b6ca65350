package analysis

import (
	"fmt"

	"github.com/postcall/postcall/agent"
)

// EstimateRun estimates one run of a plan's analysis or QC prompt on a
// call before any is sent, for cost estimates: the prompt tokens of its
// first request as Analyze or QC would build it (EstimateTokens), and as
// completion tokens the plan's own max_tokens or else the bound the schema
// puts on an answer. The completion is an upper bound (answers usually take
// less; a reasoning model's reasoning tokens are not in it), and nothing is
// assumed read from the prompt cache.
func EstimateRun(plan *agent.Plan, kind string, in Input) (prompt, completion int, err error) {
	var system, schemaName string
	var schema []byte
	switch {
	case kind == KindAnalysis && plan.Analysis != nil:
		system, schemaName, schema = analysisSystem(plan.Analysis), analysisSchemaName, AnalysisSchema(plan.Analysis)
		completion = orDefault(plan.Analysis.MaxTokens, analysisBound(plan.Analysis))
	case kind == KindQC && plan.QC != nil:
		system, schemaName, schema = qcSystem(plan.QC), qcSchemaName, QCSchema(plan.QC)
		completion = orDefault(plan.QC.MaxTokens, qcBound(plan.QC))
	default:
		return 0, 0, fmt.Errorf("estimate a %s run: agent %s has no %s prompt", kind, plan.ID, kind)
	}
	req := Request{
		Messages: []Message{{Role: RoleSystem, Content: system}, {Role: RoleUser, Content: callMessage(in)}},
		Schema:   &Schema{Name: schemaName, Definition: schema},
	}
	return EstimateTokens(req), completion, nil
}
