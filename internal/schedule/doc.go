// Package schedule runs recurring pushes: a cron expression read in a time
// zone, an audience (every subscribed follower, a tag, openids or external
// ids), a template with data rendered per recipient from Go templates, and
// an optional HTTP JSON data source (a weather API, a sales report) called
// once per distinct URL per run.
//
// Exactly once. Schedules are rows; their cursor next_due_at is the next
// due time not handled yet. One periodic River job, the tick (inserted by
// River's elected leader on every minute, unique per minute, worked by any
// instance), walks every schedule whose cursor has come: in one
// transaction it inserts a run row per due time (UNIQUE (schedule_id,
// due_at)) with its River job (unique by schedule and due time), and
// advances the cursor. Another instance ticking at the same moment waits
// for the row lock (PostgreSQL) or the write lock (SQLite), then finds the
// cursor moved; a gateway restarted in the due minute finds the run row.
// A due time the gateway missed while it was down runs late when it is
// noticed within the schedule's misfire grace, and is otherwise recorded
// as a missed run.
//
// A run job plans, then sends (run.go): both steps can be repeated after a
// crash without sending twice, since sends go through the push pipeline
// with an Idempotency-Key derived from the run.
//
// Data: the templates see a Recipient (.City, .Attr, .Follower, .Vars,
// .Now, .Response) and helpers (get, has, date, daysSince, daysUntil, add,
// sub, default, trunc, trim, upper, lower, replace; secret in the source's
// URL and headers only). A recipient whose data cannot be made (no city,
// the source failed for their URL, a path missing from the answer) is
// skipped with the reason; the others are sent.
package schedule
