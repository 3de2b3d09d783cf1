package pgstore

import (
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mojodex/mojodex-scheduler/store"
)

// Times given by callers (slots, anchors, starts, a replica's start) are
// kept as bigint Unix nanoseconds, since the store returns them to the
// nanosecond and timestamptz keeps microseconds; 0 (or NULL) is unset.
// Times of the database's clock (leases, heartbeats, publications) are
// timestamptz. Task names are text COLLATE "C", so that they sort as Go
// sorts strings, bytewise.
//
// Every statement names its tables with the schema: {s} in the text below
// is replaced by the quoted schema name.

// nowNanos is the statement's clock in Unix nanoseconds (microsecond
// precision), from the timestamptz expression t.
func nowNanos(t string) string {
	return fmt.Sprintf("((extract(epoch FROM %s) * 1000000)::bigint * 1000)", t)
}

// queries holds the statements of one schema.
type queries struct {
	ensureTasks, lockTasks, lockInProgress                  string
	anchors, claims, checkpoints, runs, pauses              string
	loadTasks, loadInProgress, loadLast, history, listTasks string
	forgetTask, forgetInProgress, forgetRuns                string
	clock, heartbeat, replicas, renew, takeOver             string
	lockTaskSets, publish, taskSet                          string
}

func newQueries(schema, channel string) queries {
	s := pgx.Identifier{schema}.Sanitize()
	r := strings.NewReplacer("{s}", s, "{channel}", quoteLiteral(channel),
		"{tolerance}", fmt.Sprint(store.EarlyTolerance.Nanoseconds()),
		"{history}", fmt.Sprint(store.HistorySize),
		"{retention}", fmt.Sprint(ReplicaRetention.Microseconds()))
	q := queries{
		// A commit first makes sure the row of every task it stores
		// exists, then locks the rows of every task it touches, in one
		// order (task names sorted): concurrent commits of the same tasks
		// are serialized there, and never deadlock.
		ensureTasks: `INSERT INTO {s}.scheduler_tasks (task) SELECT unnest($1::text[]) ON CONFLICT (task) DO NOTHING`,
		lockTasks: `SELECT statement_timestamp(), count(*) FROM (
			SELECT 1 FROM {s}.scheduler_tasks WHERE task = ANY($1::text[]) ORDER BY task FOR UPDATE) l`,
		// The runs in progress that checkpoints and runs touch are locked
		// next, in (task, slot) order, as Renew locks them: so a commit and
		// a renewal never deadlock either.
		lockInProgress: `SELECT count(*) FROM (
			SELECT 1 FROM {s}.scheduler_inprogress
			WHERE (task, slot) IN (SELECT * FROM unnest($1::text[], $2::bigint[]))
			ORDER BY task, slot FOR UPDATE) l`,

		// Anchors: the first of the batch for a task is stored where none
		// is; every anchor gets the stored one.
		anchors: `WITH input AS (
				SELECT * FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS u(task, anchor, idx)
			), first AS (
				SELECT DISTINCT ON (task) task, anchor FROM input ORDER BY task, idx
			), stored AS (
				UPDATE {s}.scheduler_tasks t SET anchor = f.anchor FROM first f
				WHERE t.task = f.task AND t.anchor IS NULL
				RETURNING t.task, t.anchor
			)
			SELECT array_agg(coalesce(n.anchor, t.anchor, 0) ORDER BY i.idx)
			FROM input i
			LEFT JOIN stored n ON n.task = i.task
			LEFT JOIN {s}.scheduler_tasks t ON t.task = i.task`,

		// Claims, in one statement. A claim is refused stale when its
		// version and the current one are both set and differ, early when
		// its due time is beyond the statement's clock plus the tolerance;
		// otherwise it is won when its slot is after the task's last
		// claimed slot and after every claim of the task earlier in the
		// batch that was not refused stale or early (the window below).
		// The task rows are locked by this transaction, so last_slot is
		// the latest; the UPDATE's own guard (last_slot < slot) and the
		// primary key of scheduler_inprogress would stop a second winner
		// all the same: a claim counts as won only if its task's row was
		// moved by this statement. The result is one character per claim,
		// in order: w (won), c (claimed), e (early), s (stale); and the
		// clock the claims were judged by.
		claims: `WITH input AS (
				SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::bigint[], $6::bigint[])
					WITH ORDINALITY AS u(task, slot, due, owner, lease_us, version, idx)
			), clock AS (
				SELECT statement_timestamp() AS now
			), cur AS (
				SELECT coalesce((SELECT version ` + fromCurrentTaskSet + `), 0) AS version
			), classified AS (
				SELECT i.*, CASE
					WHEN i.version <> 0 AND c.version <> 0 AND i.version <> c.version THEN 's'
					WHEN i.due > ` + nowNanos("k.now") + ` + {tolerance} THEN 'e'
				END AS refusal
				FROM input i, cur c, clock k
			), decided AS (
				SELECT c.*, c.refusal IS NULL AND c.slot > greatest(
					coalesce(t.last_slot, 0),
					coalesce(max(c.slot) FILTER (WHERE c.refusal IS NULL) OVER (
						PARTITION BY c.task ORDER BY c.idx ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
				) AS won
				FROM classified c LEFT JOIN {s}.scheduler_tasks t ON t.task = c.task
			), moved AS (
				UPDATE {s}.scheduler_tasks t SET last_slot = d.slot
				FROM (SELECT task, max(slot) AS slot FROM decided WHERE won GROUP BY task) d
				WHERE t.task = d.task AND (t.last_slot IS NULL OR t.last_slot < d.slot)
				RETURNING t.task
			), started AS (
				INSERT INTO {s}.scheduler_inprogress (task, slot, owner, epoch, lease_until)
				SELECT d.task, d.slot, d.owner, 1,
					CASE WHEN d.lease_us > 0 THEN k.now + d.lease_us * interval '1 microsecond' END
				FROM decided d JOIN moved m ON m.task = d.task, clock k
				WHERE d.won
			)
			SELECT string_agg(CASE WHEN d.won AND m.task IS NOT NULL THEN 'w' ELSE coalesce(d.refusal, 'c') END, '' ORDER BY d.idx),
				(SELECT now FROM clock)
			FROM decided d LEFT JOIN moved m ON m.task = d.task`,

		// Checkpoints: applied to a run in progress (the last one of the
		// batch for a slot wins) when they carry no epoch or the run's
		// owner and epoch; fenced when the run is in progress under
		// another owner or epoch; ignored when it is not in progress.
		// Returns the positions (from 1) of the fenced ones.
		checkpoints: `WITH input AS (
				SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[], $7::bigint[])
					WITH ORDINALITY AS u(task, slot, pages, next_offset, items, owner, epoch, idx)
			), checked AS (
				SELECT i.*, p.task IS NOT NULL AS found,
					(i.epoch <= 0 OR (p.owner = i.owner AND p.epoch = i.epoch)) AS holds
				FROM input i LEFT JOIN {s}.scheduler_inprogress p ON p.task = i.task AND p.slot = i.slot
			), applied AS (
				UPDATE {s}.scheduler_inprogress p
				SET pages = c.pages, next_offset = c.next_offset, items = c.items
				FROM (SELECT DISTINCT ON (task, slot) * FROM checked WHERE found AND holds ORDER BY task, slot, idx DESC) c
				WHERE p.task = c.task AND p.slot = c.slot
			)
			SELECT coalesce(array_agg(idx ORDER BY idx), '{}') FROM checked WHERE found AND NOT holds`,

		// Runs. A manual run, or one without an epoch, is recorded. A run
		// with an epoch is recorded when its replica holds its slot at that
		// epoch and no run earlier in the batch ended the slot; otherwise
		// it is fenced. A recorded run that is not manual ends its slot's
		// time in progress. Runs are numbered per task (run_seq of the
		// locked task row), which orders the history as recorded; a task
		// keeps its last {history} runs: older ones are deleted here, and
		// runs of this batch already beyond them are not inserted.
		// Returns the positions (from 1) of the fenced runs.
		runs: `WITH input AS (
				SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[],
					$6::text[], $7::text[], $8::bigint[], $9::bigint[], $10::integer[], $11::text[], $12::text[],
					$13::bigint[], $14::boolean[], $15::boolean[])
					WITH ORDINALITY AS u(task, slot, start, lateness, duration, outcome, reason, pages, items, status,
						err, replica, epoch, manual, resumed, idx)
			), checked AS (
				SELECT i.*, (p.task IS NOT NULL AND p.owner = i.replica AND p.epoch = i.epoch) AS holds
				FROM input i LEFT JOIN {s}.scheduler_inprogress p ON p.task = i.task AND p.slot = i.slot
			), decided AS (
				SELECT c.*, (c.manual OR c.epoch <= 0 OR (c.holds AND c.idx = min(c.idx) FILTER (
					WHERE NOT c.manual AND (c.epoch <= 0 OR c.holds)) OVER (PARTITION BY c.task, c.slot))) AS recorded
				FROM checked c
			), rec AS (
				SELECT d.*, row_number() OVER (PARTITION BY d.task ORDER BY d.idx) AS n,
					count(*) OVER (PARTITION BY d.task) AS cnt
				FROM decided d WHERE d.recorded
			), numbered AS (
				UPDATE {s}.scheduler_tasks t SET run_seq = t.run_seq + c.cnt
				FROM (SELECT task, count(*) AS cnt FROM rec GROUP BY task) c
				WHERE t.task = c.task
				RETURNING t.task, t.run_seq
			), inserted AS (
				INSERT INTO {s}.scheduler_runs (task, seq, slot, start, lateness, duration, outcome, reason,
					pages, items, status, err, replica, epoch, manual, resumed)
				SELECT r.task, nb.run_seq - r.cnt + r.n, r.slot, r.start, r.lateness, r.duration, r.outcome, r.reason,
					r.pages, r.items, r.status, r.err, r.replica, r.epoch, r.manual, r.resumed
				FROM rec r JOIN numbered nb ON nb.task = r.task
				WHERE r.n > r.cnt - {history}
			), ended AS (
				DELETE FROM {s}.scheduler_inprogress p USING rec r
				WHERE NOT r.manual AND p.task = r.task AND p.slot = r.slot
			), pruned AS (
				DELETE FROM {s}.scheduler_runs o USING numbered nb
				WHERE o.task = nb.task AND o.seq <= nb.run_seq - {history}
			)
			SELECT coalesce(array_agg(idx ORDER BY idx), '{}') FROM decided WHERE NOT recorded`,

		// Pauses: the last of the batch for a task wins; the replicas
		// listening are notified (at commit).
		pauses: `WITH input AS (
				SELECT * FROM unnest($1::text[], $2::boolean[]) WITH ORDINALITY AS u(task, paused, idx)
			), last AS (
				SELECT DISTINCT ON (task) task, paused FROM input ORDER BY task, idx DESC
			), stored AS (
				UPDATE {s}.scheduler_tasks t SET paused = l.paused FROM last l WHERE t.task = l.task
			)
			SELECT pg_notify({channel}, 'pause')`,

		loadTasks: `SELECT task, coalesce(anchor, 0), coalesce(last_slot, 0), paused
			FROM {s}.scheduler_tasks WHERE task = ANY($1::text[])`,
		loadInProgress: `SELECT task, slot, pages, next_offset, items, owner, epoch, lease_until
			FROM {s}.scheduler_inprogress WHERE task = ANY($1::text[]) ORDER BY task, slot`,
		loadLast: `SELECT r.task, ` + runColumns + `
			FROM unnest($1::text[]) AS n(task)
			CROSS JOIN LATERAL (
				SELECT * FROM {s}.scheduler_runs WHERE task = n.task ORDER BY seq DESC LIMIT 1
			) r`,
		history: `SELECT task, ` + runColumns + ` FROM {s}.scheduler_runs
			WHERE task = $1 ORDER BY seq DESC LIMIT $2`,
		listTasks: `SELECT task FROM {s}.scheduler_tasks ORDER BY task`,

		// Forget deletes the task's row first: that waits for a commit of
		// the task in progress, after which the next statements see all it
		// wrote.
		forgetTask:       `DELETE FROM {s}.scheduler_tasks WHERE task = $1`,
		forgetInProgress: `DELETE FROM {s}.scheduler_inprogress WHERE task = $1`,
		forgetRuns:       `DELETE FROM {s}.scheduler_runs WHERE task = $1`,

		clock: `SELECT statement_timestamp()`,
		// A heartbeat also deletes the rows of replicas not seen for
		// ReplicaRetention (their names are not reused: host names and
		// process ids), so that the table does not grow with every
		// restart.
		heartbeat: `WITH pruned AS (
				DELETE FROM {s}.scheduler_replicas
				WHERE seen < statement_timestamp() - {retention} * interval '1 microsecond' AND name <> $1
			)
			INSERT INTO {s}.scheduler_replicas AS r (name, started, seen, version)
			VALUES ($1, $2, statement_timestamp(), $3)
			ON CONFLICT (name) DO UPDATE SET
				started = CASE WHEN $2::bigint = 0 THEN r.started ELSE excluded.started END,
				seen = excluded.seen, version = excluded.version
			RETURNING seen`,
		replicas: `SELECT name, started, seen, version FROM {s}.scheduler_replicas
			WHERE seen >= statement_timestamp() - $1 * interval '1 microsecond' ORDER BY name`,
		// Renew locks the runs in (task, slot) order, as commits do. A run
		// taken over or recorded meanwhile is re-checked against its latest
		// version (Read Committed) and left out. Returns the positions
		// (from 1) of the runs renewed.
		renew: `WITH input AS (
				SELECT * FROM unnest($2::text[], $3::bigint[], $4::bigint[]) WITH ORDINALITY AS u(task, slot, epoch, idx)
			), held AS (
				SELECT p.task, p.slot FROM {s}.scheduler_inprogress p
				WHERE p.owner = $1 AND (p.task, p.slot, p.epoch) IN (SELECT task, slot, epoch FROM input)
				ORDER BY p.task, p.slot FOR UPDATE
			), renewed AS (
				UPDATE {s}.scheduler_inprogress p
				SET lease_until = statement_timestamp() + $5 * interval '1 microsecond'
				FROM held h WHERE p.task = h.task AND p.slot = h.slot
				RETURNING p.task, p.slot, p.epoch
			)
			SELECT coalesce(array_agg(i.idx), '{}') FROM input i
			JOIN renewed r ON r.task = i.task AND r.slot = i.slot AND r.epoch = i.epoch`,
		// TakeOver skips the runs another replica is taking over (or a
		// commit is writing) at the same moment, so concurrent callers get
		// disjoint runs and never wait for each other.
		takeOver: `WITH lapsed AS (
				SELECT task, slot FROM {s}.scheduler_inprogress
				WHERE task = ANY($1::text[]) AND lease_until <= statement_timestamp()
				ORDER BY lease_until, task, slot
				LIMIT $2
				FOR UPDATE SKIP LOCKED
			), taken AS (
				UPDATE {s}.scheduler_inprogress p
				SET owner = $3, epoch = p.epoch + 1, lease_until = statement_timestamp() + $4 * interval '1 microsecond'
				FROM lapsed l WHERE p.task = l.task AND p.slot = l.slot
				RETURNING p.task, p.slot, p.epoch, p.pages, p.next_offset, p.items
			)
			SELECT * FROM taken ORDER BY task, slot`,

		// Publications are serialized by a lock on the versions table that
		// plain reads (claims, TaskSet) do not wait for.
		lockTaskSets: `LOCK TABLE {s}.scheduler_task_sets IN SHARE ROW EXCLUSIVE MODE`,
		//
		// A content never published becomes a new version, made current; a
		// known one keeps its version and is made current again only with
		// force ($3). The current version is the one made current last
		// (made_current counts the promotions). The result: the content's
		// version, the current version, and the notifications sent.
		publish: `WITH known AS (
				SELECT version FROM {s}.scheduler_task_sets WHERE hash = $1
			), top AS (
				SELECT coalesce(max(version), 0) AS version, coalesce(max(made_current), 0) AS made
				FROM {s}.scheduler_task_sets
			), cur AS (
				SELECT version ` + fromCurrentTaskSet + `
			), inserted AS (
				INSERT INTO {s}.scheduler_task_sets (version, hash, content, published_at, made_current)
				SELECT top.version + 1, $1, $2, statement_timestamp(), top.made + 1 FROM top
				WHERE NOT EXISTS (SELECT 1 FROM known)
				RETURNING version
			), promoted AS (
				UPDATE {s}.scheduler_task_sets SET made_current = (SELECT made FROM top) + 1
				WHERE $3::boolean AND hash = $1 AND version <> coalesce((SELECT version FROM cur), 0)
				RETURNING version
			), notified AS (
				SELECT pg_notify({channel}, 'task set')
				FROM (SELECT version FROM inserted UNION ALL SELECT version FROM promoted) AS changed
			)
			SELECT coalesce((SELECT version FROM inserted), (SELECT version FROM known), 0),
				coalesce((SELECT version FROM inserted), (SELECT version FROM promoted), (SELECT version FROM cur), 0),
				(SELECT count(*) FROM notified)`,
		taskSet: `SELECT version, content ` + fromCurrentTaskSet,
	}
	for _, p := range []*string{
		&q.ensureTasks, &q.lockTasks, &q.lockInProgress, &q.anchors, &q.claims, &q.checkpoints, &q.runs, &q.pauses,
		&q.loadTasks, &q.loadInProgress, &q.loadLast, &q.history, &q.listTasks,
		&q.forgetTask, &q.forgetInProgress, &q.forgetRuns,
		&q.clock, &q.heartbeat, &q.replicas, &q.renew, &q.takeOver, &q.lockTaskSets, &q.publish, &q.taskSet,
	} {
		*p = r.Replace(*p)
	}
	return q
}

// ReplicaRetention is how long the row of a replica that is no longer seen
// is kept (for ctl replicas and investigations) before a heartbeat of
// another replica deletes it.
const ReplicaRetention = 7 * 24 * time.Hour

// fromCurrentTaskSet selects the current task set: the version made
// current last (claims judge staleness by it, publications and TaskSet read
// it).
const fromCurrentTaskSet = `FROM {s}.scheduler_task_sets ORDER BY made_current DESC LIMIT 1`

// runColumns are the columns of a run, after its task, as scanRun reads them.
const runColumns = `slot, start, lateness, duration, outcome, reason, pages, items, status, err, replica, epoch, manual, resumed`

// quoteLiteral quotes s as an SQL string literal.
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// channelName is the NOTIFY channel of a schema (at most 63 bytes).
func channelName(schema string) string {
	const suffix = "_changes"
	if len(schema) > 63-len(suffix) {
		schema = schema[:63-len(suffix)]
	}
	return schema + suffix
}

// schemaV1 creates the tables of schema version 1 ({s}: the schema).
const schemaV1 = `
CREATE TABLE {s}.scheduler_tasks (
	task      text COLLATE "C" PRIMARY KEY,
	anchor    bigint,                       -- Unix ns of a fixed-rate anchor; NULL: none
	last_slot bigint,                       -- Unix ns of the last claimed slot; NULL: none
	paused    boolean NOT NULL DEFAULT false,
	run_seq   bigint  NOT NULL DEFAULT 0    -- runs recorded so far: numbers scheduler_runs.seq
);
COMMENT ON TABLE {s}.scheduler_tasks IS 'mojodex-scheduler: one row per task with stored state';

CREATE TABLE {s}.scheduler_inprogress (
	task        text COLLATE "C" NOT NULL,
	slot        bigint NOT NULL,             -- Unix ns of the claimed slot
	pages       bigint NOT NULL DEFAULT 0,   -- last checkpoint
	next_offset bigint NOT NULL DEFAULT 0,
	items       bigint NOT NULL DEFAULT 0,
	owner       text   NOT NULL DEFAULT '',  -- replica holding the run
	epoch       bigint NOT NULL DEFAULT 0,   -- 1 when claimed, +1 per take-over
	lease_until timestamptz,                 -- NULL: no lease
	PRIMARY KEY (task, slot)
);
COMMENT ON TABLE {s}.scheduler_inprogress IS 'mojodex-scheduler: claimed slots whose run is not recorded yet';

CREATE TABLE {s}.scheduler_runs (
	task     text COLLATE "C" NOT NULL,
	seq      bigint  NOT NULL,               -- order of recording, per task
	slot     bigint  NOT NULL,
	start    bigint  NOT NULL,               -- Unix ns; 0: unset
	lateness bigint  NOT NULL,               -- ns
	duration bigint  NOT NULL,               -- ns
	outcome  text    NOT NULL,
	reason   text    NOT NULL,
	pages    bigint  NOT NULL,
	items    bigint  NOT NULL,
	status   integer NOT NULL,
	err      text    NOT NULL,
	replica  text    NOT NULL,
	epoch    bigint  NOT NULL,
	manual   boolean NOT NULL,
	resumed  boolean NOT NULL,
	PRIMARY KEY (task, seq)
);
COMMENT ON TABLE {s}.scheduler_runs IS 'mojodex-scheduler: the last runs of each task';

CREATE TABLE {s}.scheduler_task_sets (
	version      bigint PRIMARY KEY,
	hash         text   NOT NULL UNIQUE,
	content      bytea  NOT NULL,
	published_at timestamptz NOT NULL,
	made_current bigint NOT NULL UNIQUE      -- the current version has the highest
);
COMMENT ON TABLE {s}.scheduler_task_sets IS 'mojodex-scheduler: published task sets; the one with the highest made_current is current';

CREATE TABLE {s}.scheduler_replicas (
	name    text COLLATE "C" PRIMARY KEY,
	started bigint NOT NULL,                 -- Unix ns; 0: unknown
	seen    timestamptz NOT NULL,
	version bigint NOT NULL
);
COMMENT ON TABLE {s}.scheduler_replicas IS 'mojodex-scheduler: replicas and their last heartbeat';
`
