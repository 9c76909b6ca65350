package pipeline

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/postcall/postcall/analysis"
	"github.com/postcall/postcall/store"
)

// ErrNoBatchAPI is returned by Batches.Advance when no OpenAI endpoint is
// configured: the batch waits, visibly, until one is.
var ErrNoBatchAPI = errors.New("waiting for an OpenAI endpoint with the Batch API (set OPENAI_API_KEY or OPENAI_BASE_URL)")

// batchAttempts is how many batches a run is sent in: the runs an expired
// batch did not answer go into one more batch, then live.
const batchAttempts = 2

// batchChunk is how many runs are read, or results stored, per statement.
const batchChunk = 500

// RunBatchBulk creates the runs of each remaining call of b, as RunBulk
// does, but adds them to a batch instead of enqueuing them; when every call
// is done it closes the batch and enqueues the job that uploads, submits
// and polls it (Batches.Advance). Like RunBulk it is resumable: each call's
// runs are created and added in the transaction that moves the cursor past
// it. Nothing paces it: a batch is not sent until it is complete. progress,
// when set, is told after each call how many calls are done.
func (s *Calls) RunBatchBulk(ctx context.Context, b *store.Bulk, kinds Kinds, progress func(done int)) error {
	err := s.forEachBulkCall(ctx, b, func(id uuid.UUID) error {
		if err := s.batchBulkStep(ctx, b, id, kinds); err != nil {
			return err
		}
		if progress != nil {
			progress(b.Enqueued + b.Skipped)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		ids, err := store.ReadyBatches(ctx, tx, b.ID)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			// Nothing to send (every call got an auto disposition).
			return store.FinishBulk(ctx, tx, b)
		}
		// Jobs already there (a resumed command) are not inserted twice.
		return s.enqueue(ctx, tx, Jobs{Batches: ids})
	})
}

// batchBulkStep creates one call's runs and adds them to the bulk's batch,
// and moves the bulk's cursor past the call, in one transaction.
func (s *Calls) batchBulkStep(ctx context.Context, b *store.Bulk, callID uuid.UUID, kinds Kinds) error {
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		res, started, err := s.startReanalysis(ctx, tx, callID, kinds)
		if errors.Is(err, ErrNotReanalyzable) {
			return store.AdvanceBulk(ctx, tx, b, callID, nil)
		}
		if err != nil {
			return err
		}
		// An auto disposition's deliveries go now; runs wait for the batch.
		if err := s.enqueue(ctx, tx, Jobs{Deliveries: started.Deliveries}); err != nil {
			return err
		}
		runIDs := make([]int64, len(res.Runs))
		for i, r := range res.Runs {
			runIDs[i] = r.ID
		}
		if err := store.AddToBatch(ctx, tx, b.ID, runIDs); err != nil {
			return err
		}
		return store.AdvanceBulk(ctx, tx, b, callID, runIDs)
	})
	if err != nil {
		return fmt.Errorf("batch reanalyze %s: %w", callID, err)
	}
	return nil
}

// BulkBatches returns the batches of a bulk reanalysis, oldest first.
func (s *Calls) BulkBatches(ctx context.Context, bulkID int64) ([]*store.LLMBatch, error) {
	return store.BulkBatches(ctx, s.DB, bulkID)
}

// Batches sends runs through OpenAI's Batch API: it uploads a batch's
// input file (one line per run: its first request, as a live run would send
// it), creates the batch, polls it, and when it has ended stores each
// answer with its run and enqueues the run's job, which goes on as a live
// run does from there (validation, a live repair request when needed,
// finalization, deliveries). The runs an expired batch did not answer are
// sent in one more batch, then live; those of a failed or cancelled batch,
// and those with an error line, are sent live. A run whose answer is stored
// is never sent again. Every step's state is in llm_batches, so that a
// restarted worker resumes where it stopped.
type Batches struct {
	// DB is the database. Required.
	DB DB
	// Pipeline builds the runs' requests. Required.
	Pipeline *Service
	// API is the provider's Batch API. Nil: Advance waits with
	// ErrNoBatchAPI.
	API analysis.BatchAPI
	// Queue enqueues the runs' jobs, and the jobs of batches split off or
	// resubmitted, in the transaction that records them. Required.
	Queue Queue
	// MaxRequests and MaxBytes split a batch's input file. Defaults
	// analysis.MaxBatchRequests (50,000) and analysis.MaxBatchBytes (200
	// MB), OpenAI's limits. The file is built in memory before it is
	// uploaded.
	MaxRequests, MaxBytes int
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Advance takes the batch as far as it can go now: upload, submit, poll,
// and once the provider has ended it, dispatch its results. It reports
// whether the batch is done (every run of it has finished); when it is not,
// the caller polls again later.
func (s *Batches) Advance(ctx context.Context, batchID int64) (done bool, err error) {
	for {
		b, err := store.GetBatch(ctx, s.DB, batchID)
		if err != nil {
			return false, err
		}
		if s.API == nil && b.State != store.BatchEnded && b.State != store.BatchDone {
			return false, ErrNoBatchAPI
		}
		switch b.State {
		case store.BatchCollecting:
			return false, nil // the command is still adding runs
		case store.BatchReady:
			err = s.upload(ctx, b)
		case store.BatchUploaded:
			err = s.submit(ctx, b)
		case store.BatchSubmitted:
			var ended bool
			if ended, err = s.poll(ctx, b); err == nil && !ended {
				return false, nil
			}
		case store.BatchEnded:
			if done, err = store.FinishBatchIfDone(ctx, s.DB, b.ID); err != nil || !done {
				return false, err
			}
			return true, store.FinishBulkIfBatchesDone(ctx, s.DB, b.BulkID)
		case store.BatchDone:
			return true, nil
		default:
			return false, fmt.Errorf("batch %d: unknown state %q", b.ID, b.State)
		}
		if err != nil {
			return false, err
		}
	}
}

// upload builds the batch's input file from its queued runs and uploads
// it. The runs that do not fit (MaxRequests, MaxBytes) move to a new batch;
// a run whose request cannot be built (a purged call, a prompt longer than
// the model's context) is sent live, where it fails as a live run would.
func (s *Batches) upload(ctx context.Context, b *store.LLMBatch) error {
	maxRequests, maxBytes := cmp.Or(s.MaxRequests, analysis.MaxBatchRequests), cmp.Or(s.MaxBytes, analysis.MaxBatchBytes)
	var (
		file           bytes.Buffer
		sent, budgets  []int64
		live           []int64
		reasons        []*string
		after, lastRun int64
	)
fill:
	for {
		runs, calls, err := store.QueuedBatchRuns(ctx, s.DB, b.ID, after, batchChunk)
		if err != nil {
			return err
		}
		if len(runs) == 0 {
			break
		}
		for i, run := range runs {
			after = run.ID
			line, maxTokens, why := s.line(ctx, run, calls[i])
			if why != "" {
				live, reasons = append(live, run.ID), append(reasons, &why)
				continue
			}
			if len(sent) == maxRequests || file.Len()+len(line)+1 > maxBytes {
				if len(sent) == 0 {
					why = fmt.Sprintf("its request of %d bytes is over the batch file limit of %d", len(line), maxBytes)
					live, reasons = append(live, run.ID), append(reasons, &why)
					continue
				}
				break fill
			}
			file.Write(line)
			file.WriteByte('\n')
			sent, budgets, lastRun = append(sent, run.ID), append(budgets, int64(maxTokens)), run.ID
		}
	}
	var fileID string
	if len(sent) > 0 {
		var err error
		if fileID, err = s.API.UploadBatchFile(ctx, fmt.Sprintf("postcall-batch-%d.jsonl", b.ID), file.Bytes()); err != nil {
			return fmt.Errorf("batch %d: %w", b.ID, err)
		}
	}
	return pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		liveRuns, err := store.SendBatchItemsLive(ctx, tx, b.ID, live, reasons)
		if err != nil {
			return err
		}
		jobs := Jobs{Runs: runRefs(liveRuns), RunPriority: PriorityBulk}
		if len(sent) == 0 {
			// Nothing left to send through the batch.
			if err := store.EndBatch(ctx, tx, b.ID, store.BatchOutcome{Live: len(liveRuns)}); err != nil {
				return err
			}
			return s.Queue.Enqueue(ctx, tx, jobs)
		}
		if err := store.CountBatchDispatch(ctx, tx, b.ID, store.BatchOutcome{Live: len(liveRuns)}); err != nil {
			return err
		}
		next, err := store.SetBatchUploaded(ctx, tx, b.ID, fileID, sent, budgets, lastRun)
		if err != nil {
			return err
		}
		if next != 0 {
			jobs.Batches = []int64{next}
			s.logger().InfoContext(ctx, "batch split", slog.Int64("batch", b.ID), slog.Int64("next", next),
				slog.Int("requests", len(sent)), slog.Int("bytes", file.Len()))
		}
		s.logger().InfoContext(ctx, "batch input uploaded", slog.Int64("batch", b.ID), slog.String("file", fileID),
			slog.Int("requests", len(sent)), slog.Int("bytes", file.Len()), slog.Int("live", len(liveRuns)))
		return s.Queue.Enqueue(ctx, tx, jobs)
	})
}

// line is the run's input line and the output budget it asks for, or why
// the run cannot go through the batch.
func (s *Batches) line(ctx context.Context, run *store.Run, c *store.Call) ([]byte, int, string) {
	switch {
	case run.Terminal():
		return nil, 0, "finished before its batch was sent"
	case c.IsPurged:
		return nil, 0, "its call was purged before its batch was sent"
	}
	req, err := s.Pipeline.firstRequest(ctx, s.DB, run, c)
	if err != nil {
		return nil, 0, err.Error()
	}
	line, err := analysis.BatchLine(strconv.FormatInt(run.ID, 10), req)
	if err != nil {
		return nil, 0, err.Error()
	}
	return line, req.MaxTokens, ""
}

// submit creates the provider's batch over the uploaded file, unless an
// earlier attempt created it and died before recording it.
func (s *Batches) submit(ctx context.Context, b *store.LLMBatch) error {
	pb, err := s.API.FindBatch(ctx, *b.InputFileID)
	if err != nil {
		return fmt.Errorf("batch %d: %w", b.ID, err)
	}
	if pb == nil {
		if pb, err = s.API.CreateBatch(ctx, *b.InputFileID, map[string]string{"postcall_batch": strconv.FormatInt(b.ID, 10)}); err != nil {
			return fmt.Errorf("batch %d: %w", b.ID, err)
		}
	}
	s.logger().InfoContext(ctx, "batch submitted", slog.Int64("batch", b.ID), slog.String("provider_batch", pb.ID),
		slog.Int("requests", b.Requests))
	return store.SetBatchSubmitted(ctx, s.DB, b.ID, pb)
}

// poll reads the provider's batch; once it has ended, it dispatches its
// results and reports true.
func (s *Batches) poll(ctx context.Context, b *store.LLMBatch) (bool, error) {
	pb, err := s.API.RetrieveBatch(ctx, *b.ProviderBatchID)
	if err != nil {
		return false, fmt.Errorf("batch %d: %w", b.ID, err)
	}
	if err := store.SetBatchStatus(ctx, s.DB, b.ID, pb); err != nil {
		return false, err
	}
	if !pb.Status.Ended() {
		return false, nil
	}
	return true, s.dispatch(ctx, b, pb)
}

// dispatch stores the answers of an ended batch with their runs and
// enqueues the runs' jobs, sends the runs with an error line live, and
// resubmits or sends live the runs it did not answer. It is resumable: a
// run is dispatched once, by the statement that moves it out of queued.
func (s *Batches) dispatch(ctx context.Context, b *store.LLMBatch, pb *analysis.Batch) error {
	var total store.BatchOutcome
	unsent := map[int64]bool{} // error lines saying the batch never sent them
	for _, file := range []string{pb.OutputFileID, pb.ErrorFileID} {
		if file == "" {
			continue
		}
		o, err := s.readResults(ctx, b, file, unsent)
		if err != nil {
			return err
		}
		total.Answered, total.Errored, total.Live = total.Answered+o.Answered, total.Errored+o.Errored, total.Live+o.Live
	}
	left, err := store.QueuedBatchItems(ctx, s.DB, b.ID)
	if err != nil {
		return err
	}
	resubmit := pb.Status == analysis.BatchExpired && b.Attempt < batchAttempts
	err = pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		var (
			jobs = Jobs{RunPriority: PriorityBulk}
			last store.BatchOutcome
		)
		if len(left) > 0 && resubmit {
			next, err := store.ResubmitBatchItems(ctx, tx, b.ID, left)
			if err != nil {
				return err
			}
			jobs.Batches, last.Resubmitted = []int64{next}, len(left)
		} else if len(left) > 0 {
			why := fmt.Sprintf("batch %s %s without answering it; sent live", pb.ID, pb.Status)
			if len(pb.Errors) > 0 {
				why += ": " + fmt.Sprint(pb.Errors)
			}
			reasons := make([]*string, len(left))
			for i := range reasons {
				reasons[i] = &why
			}
			runs, err := store.SendBatchItemsLive(ctx, tx, b.ID, left, reasons)
			if err != nil {
				return err
			}
			jobs.Runs, last.Live = runRefs(runs), len(runs)
		}
		if err := store.EndBatch(ctx, tx, b.ID, last); err != nil {
			return err
		}
		total.Resubmitted, total.Live = last.Resubmitted, total.Live+last.Live
		return s.Queue.Enqueue(ctx, tx, jobs)
	})
	if err != nil {
		return err
	}
	s.logger().InfoContext(ctx, "batch ended", slog.Int64("batch", b.ID), slog.String("provider_batch", pb.ID),
		slog.String("status", string(pb.Status)), slog.Int("answered", total.Answered), slog.Int("errored", total.Errored),
		slog.Int("resubmitted", total.Resubmitted), slog.Int("live", total.Live), slog.Int("unsent", len(unsent)))
	return nil
}

// readResults streams one output or error file, storing answers and
// sending the runs with an error line live, batchChunk lines per
// transaction. Lines saying the batch never sent the request (expired,
// cancelled) leave the run queued, for dispatch to resubmit or send live;
// they are noted in unsent.
func (s *Batches) readResults(ctx context.Context, b *store.LLMBatch, fileID string, unsent map[int64]bool) (store.BatchOutcome, error) {
	var (
		total   store.BatchOutcome
		answers []store.BatchItemAnswer
		failed  []int64
		reasons []*string
	)
	flush := func() error {
		if len(answers) == 0 && len(failed) == 0 {
			return nil
		}
		err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
			answered, err := store.AnswerBatchItems(ctx, tx, b.ID, answers)
			if err != nil {
				return err
			}
			errored, err := store.SendBatchItemsLive(ctx, tx, b.ID, failed, reasons)
			if err != nil {
				return err
			}
			o := store.BatchOutcome{Answered: len(answered), Errored: len(errored), Live: len(errored)}
			if err := store.CountBatchDispatch(ctx, tx, b.ID, o); err != nil {
				return err
			}
			total.Answered, total.Errored, total.Live = total.Answered+o.Answered, total.Errored+o.Errored, total.Live+o.Live
			return s.Queue.Enqueue(ctx, tx, Jobs{Runs: append(runRefs(answered), runRefs(errored)...), RunPriority: PriorityBulk})
		})
		answers, failed, reasons = answers[:0], failed[:0], reasons[:0]
		return err
	}
	body, err := s.API.FileContent(ctx, fileID)
	if err != nil {
		return total, fmt.Errorf("batch %d: %w", b.ID, err)
	}
	defer body.Close()
	err = analysis.ReadBatchResults(body, func(r analysis.BatchResult) error {
		runID, err := strconv.ParseInt(r.CustomID, 10, 64)
		if err != nil {
			return nil // not one of ours
		}
		switch {
		case r.Response != nil:
			answers = append(answers, store.BatchItemAnswer{RunID: runID, Answer: r.Response})
		case r.Unsent():
			unsent[runID] = true
		default:
			why := fmt.Sprintf("batch request failed: %s; sent live", r.Err.Error())
			failed, reasons = append(failed, runID), append(reasons, &why)
		}
		if len(answers)+len(failed) >= batchChunk {
			return flush()
		}
		return nil
	})
	if err != nil {
		return total, fmt.Errorf("batch %d: read file %s: %w", b.ID, fileID, err)
	}
	return total, flush()
}

// runRefs are the runs' RunRefs, for their jobs.
func runRefs(runs []store.BatchRun) []RunRef {
	refs := make([]RunRef, len(runs))
	for i, r := range runs {
		refs[i] = RunRef{ID: r.ID, CallID: r.CallID, Kind: r.Kind}
	}
	return refs
}

func (s *Batches) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}
