package analysis_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/analysis"
)

func TestDemoModel(t *testing.T) {
	t.Parallel()
	a := &analysis.Analyzer{Model: analysis.Demo{}}
	ctx := context.Background()
	plan := testPlan()

	res, err := a.Analyze(ctx, plan, 1, testInput("Dana", "Yes"))
	require.NoError(t, err, "demo output passes the same validation as a real model's")
	require.Equal(t, analysis.DemoModelName, res.Model)
	require.Len(t, res.Fields, len(plan.Analysis.Fields))
	for _, name := range []string{"summary", "email"} {
		s, ok := res.Fields[name].(string)
		require.True(t, ok, name)
		require.True(t, strings.HasPrefix(s, "[demo]"), s)
	}
	require.Contains(t, plan.Analysis.Fields[1].Values, res.Fields["outcome"])
	require.IsType(t, true, res.Fields["success"])
	require.Nil(t, res.Fields["callback_date"], "the demo invents no facts")
	require.Nil(t, res.Fields["seats"])

	again, err := a.Analyze(ctx, plan, 1, testInput("Dana", "Yes"))
	require.NoError(t, err)
	require.Equal(t, res.Fields, again.Fields, "deterministic")

	qc, err := a.QC(ctx, plan, 1, testInput("Dana", "Yes"))
	require.NoError(t, err)
	require.Equal(t, analysis.DemoModelName, qc.Model)
	require.Len(t, qc.Items, 2)
	for _, it := range qc.Items {
		require.True(t, strings.HasPrefix(it.Evidence, "[demo]"))
	}
	require.Equal(t, analysis.Score(plan.QC.Checklist, qc.Items), qc.Score)
	require.Zero(t, analysis.TotalUsage(qc.Requests))
}
