package analysis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	openai "github.com/sashabaranov/go-openai"
)

// OpenAI's Batch API limits on one input file.
const (
	MaxBatchRequests = 50_000
	MaxBatchBytes    = 200 << 20
)

// TierBatch is the service tier recorded for requests answered through the
// Batch API, which are billed at batch rates.
const TierBatch = "batch"

// BatchStatus is a batch's status as the provider reports it.
type BatchStatus string

// Batch statuses (OpenAI's).
const (
	BatchValidating BatchStatus = "validating"
	BatchInProgress BatchStatus = "in_progress"
	BatchFinalizing BatchStatus = "finalizing"
	BatchCompleted  BatchStatus = "completed"
	BatchExpired    BatchStatus = "expired"
	BatchFailed     BatchStatus = "failed"
	BatchCancelling BatchStatus = "cancelling"
	BatchCancelled  BatchStatus = "cancelled"
)

// Ended reports a status after which the batch changes no more.
func (s BatchStatus) Ended() bool {
	return s == BatchCompleted || s == BatchExpired || s == BatchFailed || s == BatchCancelled
}

// Batch is a provider batch as last retrieved.
type Batch struct {
	ID          string
	InputFileID string
	Status      BatchStatus
	// Total, Completed and Failed are the provider's request_counts.
	Total, Completed, Failed int
	// OutputFileID and ErrorFileID are empty until the batch has them.
	OutputFileID, ErrorFileID string
	// Errors are the provider's reasons for a failed batch (errors.data),
	// "code: message" each.
	Errors []string
}

// BatchAPI is the part of OpenAI's Batch API postcall uses: upload a JSONL
// input file, create a batch over it, retrieve it, and read its output and
// error files. [OpenAI] implements it; tests use it against an httptest
// fake of the real wire format (openaitest).
type BatchAPI interface {
	// UploadBatchFile uploads a JSONL input file with purpose batch and
	// returns its file id.
	UploadBatchFile(ctx context.Context, name string, jsonl []byte) (string, error)
	// CreateBatch creates a batch over an uploaded input file, for the chat
	// completions endpoint with the 24h completion window. metadata is
	// stored with the batch.
	CreateBatch(ctx context.Context, inputFileID string, metadata map[string]string) (*Batch, error)
	// RetrieveBatch reads a batch's status and counts.
	RetrieveBatch(ctx context.Context, id string) (*Batch, error)
	// FindBatch returns the most recent batch created over inputFileID
	// among the latest 100, or nil: a batch created by a process that died
	// before it could record the batch's id is found again, not created
	// twice.
	FindBatch(ctx context.Context, inputFileID string) (*Batch, error)
	// FileContent streams a file's content; the caller closes it.
	FileContent(ctx context.Context, fileID string) (io.ReadCloser, error)
}

// batchEndpoint is the URL of every input line and the batch's endpoint.
const batchEndpoint = openai.BatchEndpointChatCompletions

// BatchLine is the JSONL input line of one request: {custom_id, method:
// POST, url: /v1/chat/completions, body}, where body is byte for byte what
// Complete sends for the same request (temperature, prompt_cache_key and
// prompt_cache_retention included). It ends without a newline.
func BatchLine(customID string, req Request) ([]byte, error) {
	if err := req.validate(); err != nil {
		return nil, fmt.Errorf("batch request %s: %w", customID, err)
	}
	// go-openai marshals its request with encoding/json; so does this.
	body, err := json.Marshal(chatRequest(req))
	if err != nil {
		return nil, fmt.Errorf("batch request %s: %w", customID, err)
	}
	if body, err = exchangeFor(req).rewrite(body); err != nil {
		return nil, fmt.Errorf("batch request %s: %w", customID, err)
	}
	return json.Marshal(struct {
		CustomID string          `json:"custom_id"`
		Method   string          `json:"method"`
		URL      string          `json:"url"`
		Body     json.RawMessage `json:"body"`
	}{customID, http.MethodPost, string(batchEndpoint), body})
}

// BatchResult is one line of a batch's output or error file.
type BatchResult struct {
	// CustomID is the input line's custom_id.
	CustomID string
	// Response is the answer, as Complete would have returned it, with
	// ServiceTier TierBatch; nil when the request failed.
	Response *Response
	// Err is the request's failure: the provider's error answer, or the
	// batch's own (code batch_expired, batch_cancelled); nil on success.
	Err *APIError
}

// Unsent reports a request the batch ended without sending (it expired or
// was cancelled first): sending it again may succeed.
func (r BatchResult) Unsent() bool {
	return r.Err != nil && (r.Err.Code == "batch_expired" || r.Err.Code == "batch_cancelled")
}

// batchLine is the wire form of an output or error file line.
type batchLine struct {
	CustomID string `json:"custom_id"`
	Response *struct {
		StatusCode int             `json:"status_code"`
		RequestID  string          `json:"request_id"`
		Body       json.RawMessage `json:"body"`
	} `json:"response"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// ReadBatchResults reads an output or error file line by line, calling fn
// for each result; it holds one line in memory at a time, so a file of
// hundreds of MB is read in constant memory. fn's error stops the reading.
func ReadBatchResults(r io.Reader, fn func(BatchResult) error) error {
	dec := json.NewDecoder(r)
	for n := 1; ; n++ {
		var line batchLine
		if err := dec.Decode(&line); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("batch results line %d: %w", n, err)
		}
		if line.CustomID == "" {
			return fmt.Errorf("batch results line %d: no custom_id", n)
		}
		if err := fn(parseBatchLine(&line)); err != nil {
			return err
		}
	}
}

func parseBatchLine(line *batchLine) BatchResult {
	res := BatchResult{CustomID: line.CustomID}
	switch resp := line.Response; {
	case line.Error != nil:
		res.Err = &APIError{Code: line.Error.Code, Message: shorten(line.Error.Message, 300)}
	case resp == nil:
		res.Err = &APIError{Code: "no_response", Message: "the batch result has neither response nor error"}
	case resp.StatusCode != http.StatusOK:
		res.Err = batchAPIError(resp.StatusCode, resp.Body)
	default:
		var out openai.ChatCompletionResponse
		if err := json.Unmarshal(resp.Body, &out); err != nil || len(out.Choices) == 0 {
			res.Err = &APIError{StatusCode: resp.StatusCode, Code: "bad_answer", Message: "the answer has no choices"}
			break
		}
		res.Response = responseOf(out, resp.Body, out.Model, TierBatch)
		res.Response.RequestID = resp.RequestID
	}
	return res
}

// batchAPIError reads an error answer's {"error": {...}} body.
func batchAPIError(status int, body []byte) *APIError {
	var e struct {
		Error *struct {
			Message string `json:"message"`
			Type    string `json:"type"`
			Code    any    `json:"code"`
		} `json:"error"`
	}
	f := &APIError{StatusCode: status, Message: http.StatusText(status)}
	if json.Unmarshal(body, &e) == nil && e.Error != nil {
		f.Type, f.Message = e.Error.Type, shorten(e.Error.Message, 300)
		if e.Error.Code != nil {
			f.Code = fmt.Sprint(e.Error.Code)
		}
	}
	f.Transient = status == http.StatusTooManyRequests || status >= 500
	return f
}

// UploadBatchFile implements BatchAPI.
func (o *OpenAI) UploadBatchFile(ctx context.Context, name string, jsonl []byte) (string, error) {
	f, err := o.client.CreateFileBytes(ctx, openai.FileBytesRequest{Name: name, Bytes: jsonl, Purpose: openai.PurposeBatch})
	if err != nil {
		return "", fmt.Errorf("upload batch input file %s (%d bytes): %w", name, len(jsonl), err)
	}
	return f.ID, nil
}

// CreateBatch implements BatchAPI.
func (o *OpenAI) CreateBatch(ctx context.Context, inputFileID string, metadata map[string]string) (*Batch, error) {
	md := make(map[string]any, len(metadata))
	for k, v := range metadata {
		md[k] = v
	}
	b, err := o.client.CreateBatch(ctx, openai.CreateBatchRequest{
		InputFileID: inputFileID, Endpoint: batchEndpoint, CompletionWindow: "24h", Metadata: md,
	})
	if err != nil {
		return nil, fmt.Errorf("create batch over file %s: %w", inputFileID, err)
	}
	return batchOf(b.Batch), nil
}

// RetrieveBatch implements BatchAPI.
func (o *OpenAI) RetrieveBatch(ctx context.Context, id string) (*Batch, error) {
	b, err := o.client.RetrieveBatch(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("retrieve batch %s: %w", id, err)
	}
	return batchOf(b.Batch), nil
}

// FindBatch implements BatchAPI.
func (o *OpenAI) FindBatch(ctx context.Context, inputFileID string) (*Batch, error) {
	limit := 100
	list, err := o.client.ListBatch(ctx, nil, &limit)
	if err != nil {
		return nil, fmt.Errorf("list batches: %w", err)
	}
	for _, b := range list.Data { // newest first
		if b.InputFileID == inputFileID {
			return batchOf(b), nil
		}
	}
	return nil, nil
}

// FileContent implements BatchAPI.
func (o *OpenAI) FileContent(ctx context.Context, fileID string) (io.ReadCloser, error) {
	raw, err := o.client.GetFileContent(ctx, fileID)
	if err != nil {
		return nil, fmt.Errorf("read file %s: %w", fileID, err)
	}
	return raw.ReadCloser, nil
}

func batchOf(b openai.Batch) *Batch {
	out := &Batch{
		ID: b.ID, InputFileID: b.InputFileID, Status: BatchStatus(b.Status),
		Total: b.RequestCounts.Total, Completed: b.RequestCounts.Completed, Failed: b.RequestCounts.Failed,
	}
	if b.OutputFileID != nil {
		out.OutputFileID = *b.OutputFileID
	}
	if b.ErrorFileID != nil {
		out.ErrorFileID = *b.ErrorFileID
	}
	if b.Errors != nil {
		for _, e := range b.Errors.Data {
			out.Errors = append(out.Errors, shorten(strings.TrimSpace(e.Code+": "+e.Message), 300))
		}
	}
	return out
}

// exchangeFor is what the body rewriter adds to a request's body.
func exchangeFor(req Request) *exchange {
	return &exchange{
		temperatureZero: !isReasoningModel(req.Model),
		cacheKey:        req.CacheKey,
		cacheRetention:  req.CacheRetention,
	}
}

// responseOf is the Response of a decoded chat completion whose raw body is
// body; model is the one requested, tier the one asked for.
func responseOf(out openai.ChatCompletionResponse, body []byte, model, tier string) *Response {
	choice := out.Choices[0]
	return &Response{
		Content:      choice.Message.Content,
		Model:        orDefault(out.Model, model),
		FinishReason: string(choice.FinishReason),
		Refusal:      choice.Message.Refusal,
		ServiceTier:  tier,
		Usage:        parseUsage(body),
	}
}

var _ BatchAPI = (*OpenAI)(nil)
