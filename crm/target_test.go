package crm

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/agent"
)

func TestParseValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		in         agent.Integration
		wantType   string
		wantString string
	}{
		{
			name: "webhook with headers and options",
			in: agent.Integration{Name: "zapier", Type: "webhook", Settings: map[string]any{
				"url": "https://hooks.example.com/catch/123/secretpath/?k=v", "secret": testWebhookSecret,
				"headers": map[string]any{"Authorization": "Bearer receiver-token"}, "include_contact": false,
				"fields": []any{"outcome", "email"}, "recording_link": "none",
			}},
			wantType:   TypeWebhook,
			wantString: `webhook "zapier" -> https://hooks.example.com`,
		},
		{
			name:       "hubspot default base",
			in:         agent.Integration{Name: "hs", Type: "hubspot", Settings: map[string]any{"token": testHubSpotToken}},
			wantType:   TypeHubSpot,
			wantString: `hubspot "hs" -> https://api.hubapi.com`,
		},
		{
			name: "gohighlevel with custom fields",
			in: agent.Integration{Name: "ghl", Type: "gohighlevel", Settings: map[string]any{
				"token": testGHLToken, "location_id": testGHLLocation,
				"custom_fields":  map[string]any{"outcome": "contact.call_outcome", "budget": "Xy12AbCdEf"},
				"recording_link": true,
			}},
			wantType:   TypeGoHighLevel,
			wantString: `gohighlevel "ghl" -> https://services.leadconnectorhq.com location loc123`,
		},
		{
			name:       "pipedrive default base",
			in:         agent.Integration{Name: "pd", Type: "pipedrive", Settings: map[string]any{"api_token": testPipedriveKey}},
			wantType:   TypePipedrive,
			wantString: `pipedrive "pd" -> https://api.pipedrive.com`,
		},
		{
			name:       "pipedrive company domain",
			in:         agent.Integration{Name: "pd", Type: "pipedrive", Settings: map[string]any{"api_token": testPipedriveKey, "company_domain": "Acme.pipedrive.com"}},
			wantType:   TypePipedrive,
			wantString: `pipedrive "pd" -> https://acme.pipedrive.com`,
		},
		{
			name:       "null values are absent",
			in:         agent.Integration{Name: "hs", Type: "hubspot", Settings: map[string]any{"token": testHubSpotToken, "base_url": nil, "fields": nil}},
			wantType:   TypeHubSpot,
			wantString: `hubspot "hs" -> https://api.hubapi.com`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tg, err := Parse(tt.in)
			require.NoError(t, err)
			require.Equal(t, tt.in.Name, tg.Name())
			require.Equal(t, tt.wantType, tg.Type())
			require.Equal(t, tt.wantString, tg.String())
		})
	}
}

func TestPipedriveCompanyDomainURL(t *testing.T) {
	t.Parallel()
	tg, err := Parse(agent.Integration{Name: "pd", Type: "pipedrive", Settings: map[string]any{"api_token": testPipedriveKey, "company_domain": "acme"}})
	require.NoError(t, err)
	require.Equal(t, "https://acme.pipedrive.com/api/v1/notes", withPath(tg.(*pipedriveTarget).base, nil, "v1", "notes").String())
}

// TestParseErrors checks each error names the key and, where a secret was
// given, never repeats it.
func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   agent.Integration
		want string
	}{
		{"no name", agent.Integration{Type: "hubspot"}, "integrations[hubspot].name: required"},
		{"no type", agent.Integration{Name: "x"}, "integrations[x].type: required"},
		{"unknown type", agent.Integration{Name: "x", Type: "salesforce"}, `integrations[x].type: "salesforce" must be webhook, hubspot, gohighlevel or pipedrive`},
		{"hubspot token missing", agent.Integration{Name: "hubspot", Type: "hubspot"}, "integrations[hubspot].token: required"},
		{"hubspot token blank", agent.Integration{Name: "hs", Type: "hubspot", Settings: map[string]any{"token": "  "}}, "integrations[hs].token: required"},
		{"hubspot token not a string", agent.Integration{Name: "hs", Type: "hubspot", Settings: map[string]any{"token": 42.0}}, "integrations[hs].token: must be a string"},
		{"token with a newline", agent.Integration{Name: "hs", Type: "hubspot", Settings: map[string]any{"token": "pat-na1-abc\r\nX-Evil: 1"}}, "integrations[hs].token: must be printable ASCII without spaces"},
		{"hubspot typo key", agent.Integration{Name: "hs", Type: "hubspot", Settings: map[string]any{"token": testHubSpotToken, "tokne": "x"}}, "integrations[hs].tokne: unknown setting for type hubspot"},
		{"hubspot bad base_url", agent.Integration{Name: "hs", Type: "hubspot", Settings: map[string]any{"token": testHubSpotToken, "base_url": "ftp://x"}}, "integrations[hs].base_url: must be an absolute http or https URL"},
		{"webhook url missing", agent.Integration{Name: "w", Type: "webhook", Settings: map[string]any{"secret": testWebhookSecret}}, "integrations[w].url: required"},
		{"webhook url relative", agent.Integration{Name: "w", Type: "webhook", Settings: map[string]any{"url": "/hook", "secret": testWebhookSecret}}, "integrations[w].url: must be an absolute http or https URL"},
		{"webhook secret missing", agent.Integration{Name: "w", Type: "webhook", Settings: map[string]any{"url": "https://h.example.com"}}, "integrations[w].secret: required"},
		{"webhook raw secret", agent.Integration{Name: "w", Type: "webhook", Settings: map[string]any{"url": "https://h.example.com", "secret": "my-raw-secret-value"}}, "integrations[w].secret: must start with whsec_"},
		{"webhook secret not base64", agent.Integration{Name: "w", Type: "webhook", Settings: map[string]any{"url": "https://h.example.com", "secret": "whsec_not*base64*at*all"}}, "integrations[w].secret: the part after whsec_ must be standard base64"},
		{"webhook secret too short", agent.Integration{Name: "w", Type: "webhook", Settings: map[string]any{"url": "https://h.example.com", "secret": "whsec_c2hvcnRzZWNyZXQ="}}, "integrations[w].secret: must decode to at least 16 bytes"},
		{"webhook reserved header", agent.Integration{Name: "w", Type: "webhook", Settings: map[string]any{"url": "https://h.example.com", "secret": testWebhookSecret, "headers": map[string]any{"Webhook-Signature": "v1,forged"}}}, `integrations[w].headers: "Webhook-Signature" is set by postcall`},
		{"webhook header value with newline", agent.Integration{Name: "w", Type: "webhook", Settings: map[string]any{"url": "https://h.example.com", "secret": testWebhookSecret, "headers": map[string]any{"X-Key": "hidden-value\nX-Evil: 1"}}}, "integrations[w].headers.X-Key: must not contain control characters"},
		{"webhook include_contact not bool", agent.Integration{Name: "w", Type: "webhook", Settings: map[string]any{"url": "https://h.example.com", "secret": testWebhookSecret, "include_contact": "yes"}}, "integrations[w].include_contact: must be true or false"},
		{"fields not a list", agent.Integration{Name: "hs", Type: "hubspot", Settings: map[string]any{"token": testHubSpotToken, "fields": "summary"}}, "integrations[hs].fields: must be a list of analysis field names"},
		{"fields bad name", agent.Integration{Name: "hs", Type: "hubspot", Settings: map[string]any{"token": testHubSpotToken, "fields": []any{"ok", "not ok"}}}, "integrations[hs].fields[1]: must be an analysis field name"},
		{"recording_link bad", agent.Integration{Name: "hs", Type: "hubspot", Settings: map[string]any{"token": testHubSpotToken, "recording_link": "presigned"}}, `integrations[hs].recording_link: must be "link" or "none"`},
		{"ghl location missing", agent.Integration{Name: "ghl", Type: "gohighlevel", Settings: map[string]any{"token": testGHLToken}}, "integrations[ghl].location_id: required"},
		{"ghl custom field bad name", agent.Integration{Name: "ghl", Type: "gohighlevel", Settings: map[string]any{"token": testGHLToken, "location_id": "l1", "custom_fields": map[string]any{"bad-name": "x"}}}, `integrations[ghl].custom_fields: "bad-name" is not an analysis field name`},
		{"ghl custom field empty id", agent.Integration{Name: "ghl", Type: "gohighlevel", Settings: map[string]any{"token": testGHLToken, "location_id": "l1", "custom_fields": map[string]any{"outcome": ""}}}, "integrations[ghl].custom_fields.outcome: must be a GoHighLevel custom field id or key"},
		{"pipedrive token missing", agent.Integration{Name: "pd", Type: "pipedrive", Settings: map[string]any{"token": testPipedriveKey}}, "integrations[pd].api_token: required"},
		{"pipedrive bad domain", agent.Integration{Name: "pd", Type: "pipedrive", Settings: map[string]any{"api_token": testPipedriveKey, "company_domain": "evil.com/x"}}, "integrations[pd].company_domain: must be the account's pipedrive.com subdomain"},
		{"pipedrive uses api_token, not token", agent.Integration{Name: "pd", Type: "pipedrive", Settings: map[string]any{"api_token": testPipedriveKey, "token": testPipedriveKey}}, "integrations[pd].token: unknown setting for type pipedrive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tg, err := Parse(tt.in)
			require.Nil(t, tg)
			require.ErrorContains(t, err, tt.want)
			for _, v := range tt.in.Settings {
				if s, ok := v.(string); ok && len(s) > 8 {
					require.NotContains(t, err.Error(), s, "a setting's value leaked into the error")
				}
				if m, ok := v.(map[string]any); ok {
					for _, hv := range m {
						if s, ok := hv.(string); ok && len(s) > 8 {
							require.NotContains(t, err.Error(), s)
						}
					}
				}
			}
		})
	}
}

// TestTargetsNeverShowSecrets formats every target every way a caller might
// log it.
func TestTargetsNeverShowSecrets(t *testing.T) {
	t.Parallel()
	secrets := []string{testWebhookSecret, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "receiver-header-secret", "secretpath", testHubSpotToken, testGHLToken, testPipedriveKey}
	ins := []agent.Integration{
		{Name: "w", Type: "webhook", Settings: map[string]any{"url": "https://hooks.example.com/secretpath?sig=secretpath", "secret": testWebhookSecret, "headers": map[string]any{"X-Key": "receiver-header-secret"}}},
		{Name: "hs", Type: "hubspot", Settings: map[string]any{"token": testHubSpotToken}},
		{Name: "ghl", Type: "gohighlevel", Settings: map[string]any{"token": testGHLToken, "location_id": "l1"}},
		{Name: "pd", Type: "pipedrive", Settings: map[string]any{"api_token": testPipedriveKey}},
	}
	for _, in := range ins {
		tg, err := Parse(in)
		require.NoError(t, err)
		var logged strings.Builder
		slog.New(slog.NewTextHandler(&logged, nil)).Info("target", "t", tg)
		slog.New(slog.NewJSONHandler(&logged, nil)).Info("target", "t", tg)
		js, err := json.Marshal(tg)
		require.NoError(t, err)
		outputs := []string{tg.String(), fmt.Sprint(tg), fmt.Sprintf("%v %+v %#v %s", tg, tg, tg, tg), logged.String(), string(js)}
		for _, out := range outputs {
			for _, s := range secrets {
				require.NotContains(t, out, s, "%s leaked by %q", in.Type, out)
			}
		}
	}
}

// TestParseFromAgentsYAML parses integrations the way `agents apply` reads
// them, in the contract's YAML shape.
func TestParseFromAgentsYAML(t *testing.T) {
	t.Parallel()
	yaml := `
id: sales-qualifier
integrations:
  - {name: zapier, type: webhook, url: "https://hooks.example.com/abc", secret: "` + testWebhookSecret + `"}
  - name: crm
    type: hubspot
    token: ` + testHubSpotToken + `
    fields: [outcome, success]
    recording_link: none
  - name: ghl
    type: gohighlevel
    token: ` + testGHLToken + `
    location_id: loc123
    custom_fields: {outcome: contact.call_outcome}
  - {name: pd, type: pipedrive, api_token: ` + testPipedriveKey + `, company_domain: acme}
`
	plans, err := agent.ParsePlans([]byte(yaml))
	require.NoError(t, err)
	var got []string
	for _, in := range plans[0].Integrations {
		tg, err := Parse(in)
		require.NoError(t, err)
		got = append(got, tg.String())
	}
	require.Equal(t, []string{
		`webhook "zapier" -> https://hooks.example.com`,
		`hubspot "crm" -> https://api.hubapi.com`,
		`gohighlevel "ghl" -> https://services.leadconnectorhq.com location loc123`,
		`pipedrive "pd" -> https://acme.pipedrive.com`,
	}, got)
}
