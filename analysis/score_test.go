package analysis_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/agent"
	"github.com/postcall/postcall/analysis"
)

func TestScore(t *testing.T) {
	t.Parallel()
	contract := []agent.ChecklistItem{
		{ID: "greeting", Weight: 1},
		{ID: "consent", Weight: 2, Fatal: true},
	}
	// weights 1,1 (total 2): one passed = 1 + 4.5 = 5.5 -> 6.
	pair := []agent.ChecklistItem{{ID: "a", Weight: 1}, {ID: "b", Weight: 1}}
	// total 6, one weight passed = 1 + 1.5 = 2.5 -> 3; total 18, 1 passed = 1.5 -> 2.
	six := []agent.ChecklistItem{{ID: "a", Weight: 1}, {ID: "b", Weight: 5}}
	eighteen := []agent.ChecklistItem{{ID: "a", Weight: 1}, {ID: "b", Weight: 17}}
	// total 10: 1 + 0.9*w; w=5 -> 5.5 -> 6; w=1 -> 1.9 -> 2; w=6 -> 6.4 -> 6.
	ten := []agent.ChecklistItem{{ID: "a", Weight: 1}, {ID: "b", Weight: 4}, {ID: "c", Weight: 5}}
	v := func(pairs ...any) []analysis.Verdict {
		var out []analysis.Verdict
		for i := 0; i < len(pairs); i += 2 {
			out = append(out, analysis.Verdict{ID: pairs[i].(string), Passed: pairs[i+1].(bool)})
		}
		return out
	}
	for _, tc := range []struct {
		name      string
		checklist []agent.ChecklistItem
		verdicts  []analysis.Verdict
		want      int
	}{
		{"contract: all passed", contract, v("greeting", true, "consent", true), 10},
		{"contract: greeting failed, 1+9*2/3 = 7", contract, v("greeting", false, "consent", true), 7},
		{"contract: fatal consent failed", contract, v("greeting", true, "consent", false), 1},
		{"contract: all failed", contract, v("greeting", false, "consent", false), 1},
		{"half up at 5.5", pair, v("a", true, "b", false), 6},
		{"half up at 2.5", six, v("a", true, "b", false), 3},
		{"half up at 1.5", eighteen, v("a", true, "b", false), 2},
		{"8.5 rounds to 9", six, v("a", false, "b", true), 9}, // 1 + 9*5/6 = 8.5
		{"5.5 of ten", ten, v("a", true, "b", true, "c", false), 6},
		{"1.9 rounds to 2", ten, v("a", true, "b", false, "c", false), 2},
		{"6.4 rounds down", ten, v("a", true, "b", false, "c", true), 6},
		{"none passed, no fatal", pair, v("a", false, "b", false), 1},
		{"missing verdict counts as failed", pair, v("a", true), 6},
		{"missing fatal verdict fails", contract, v("greeting", true), 1},
		{"zero weight counts as one", []agent.ChecklistItem{{ID: "a"}, {ID: "b", Weight: 1}}, v("a", true, "b", false), 6},
		{"empty checklist", nil, nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, analysis.Score(tc.checklist, tc.verdicts))
		})
	}
}
