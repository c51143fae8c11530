import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { BIGQUERY_QUOTAS, jobsPerWindow, NO_QUOTAS, PlanError, planLoadWindows } from "./plan.ts";

const DAY = 86_400;

describe("planLoadWindows", () => {
  it("1M objects a day across 300 namespaces, one table each: within the per-table and per-project quotas", () => {
    const plan = planLoadWindows({
      quotas: BIGQUERY_QUOTAS,
      tables: 300,
      budgetFraction: 0.5,
      flushIntervalSeconds: 60,
    });
    const objectsPerTablePerDay = 1_000_000 / 300;
    const perWindow = jobsPerWindow(plan, BIGQUERY_QUOTAS, objectsPerTablePerDay);
    assert.equal(perWindow, 1);
    const tableJobs = plan.jobsPerTablePerDay * perWindow;
    assert.ok(tableJobs <= BIGQUERY_QUOTAS.tableJobsPerDay / 2, `${tableJobs} jobs/table/day`);
    assert.ok(
      tableJobs * 300 <= BIGQUERY_QUOTAS.projectJobsPerDay / 2,
      `${tableJobs * 300} jobs/project/day`,
    );
    assert.equal(plan.boundBy, "project");
    // 50,000 jobs over 300 tables is 166 a table a day: a window of 9 minutes (whole minutes).
    assert.equal(plan.windowSeconds, 540);
    assert.ok(plan.retryReservePerTable >= 1_300);
    assert.ok(plan.retryReservePerProject >= 50_000);
  });

  it("1M objects a day into one shared table: short windows, still one job per window", () => {
    const plan = planLoadWindows({
      quotas: BIGQUERY_QUOTAS,
      tables: 1,
      budgetFraction: 0.5,
      flushIntervalSeconds: 60,
    });
    assert.equal(plan.boundBy, "table");
    assert.equal(plan.windowSeconds, 120);
    assert.equal(jobsPerWindow(plan, BIGQUERY_QUOTAS, 1_000_000), 1);
    assert.equal(plan.jobsPerTablePerDay, 720);
    assert.ok(plan.jobsPerTablePerDay <= 750);
    assert.equal(plan.worstFreshnessSeconds, 180);
  });

  it("past 10,000 objects a window a table needs more than one job a window, and says so", () => {
    const plan = planLoadWindows({
      quotas: BIGQUERY_QUOTAS,
      tables: 1,
      budgetFraction: 0.5,
      flushIntervalSeconds: 60,
    });
    assert.equal(jobsPerWindow(plan, BIGQUERY_QUOTAS, 720 * 10_000), 1);
    assert.equal(jobsPerWindow(plan, BIGQUERY_QUOTAS, 720 * 10_000 + 720), 2);
  });

  it("without quotas (DuckDB) the window is the flush interval", () => {
    const plan = planLoadWindows({
      quotas: NO_QUOTAS,
      tables: 3,
      budgetFraction: 0.5,
      flushIntervalSeconds: 2,
    });
    assert.equal(plan.windowSeconds, 2);
    assert.equal(plan.boundBy, "flush-interval");
  });

  it("honours a minimum window", () => {
    const plan = planLoadWindows({
      quotas: BIGQUERY_QUOTAS,
      tables: 1,
      budgetFraction: 0.5,
      flushIntervalSeconds: 60,
      minWindowSeconds: 900,
    });
    assert.equal(plan.windowSeconds, 900);
  });

  it("refuses a budget that cannot give each table one job a day", () => {
    assert.throws(
      () =>
        planLoadWindows({
          quotas: BIGQUERY_QUOTAS,
          tables: 200_000,
          budgetFraction: 0.5,
          flushIntervalSeconds: 60,
        }),
      (e: unknown) => e instanceof PlanError && /merge tables/.test(e.message),
    );
    assert.throws(
      () =>
        planLoadWindows({
          quotas: BIGQUERY_QUOTAS,
          tables: 0,
          budgetFraction: 0.5,
          flushIntervalSeconds: 60,
        }),
      PlanError,
    );
    assert.throws(
      () =>
        planLoadWindows({
          quotas: BIGQUERY_QUOTAS,
          tables: 1,
          budgetFraction: 1.5,
          flushIntervalSeconds: 60,
        }),
      PlanError,
    );
  });

  it("for any table count and budget, first attempts stay inside the budgeted share of both quotas", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50_000 }),
        fc.double({ min: 0.05, max: 1, noNaN: true }),
        fc.integer({ min: 1, max: 600 }),
        fc.integer({ min: 0, max: 5_000_000 }),
        (tables, fraction, interval, objectsPerDay) => {
          let plan: ReturnType<typeof planLoadWindows>;
          try {
            plan = planLoadWindows({
              quotas: BIGQUERY_QUOTAS,
              tables,
              budgetFraction: fraction,
              flushIntervalSeconds: interval,
            });
          } catch (e) {
            assert.ok(e instanceof PlanError);
            assert.ok(Math.floor((BIGQUERY_QUOTAS.projectJobsPerDay * fraction) / tables) < 1);
            return;
          }
          assert.equal(plan.windowSeconds % interval, 0);
          const perTable = plan.jobsPerTablePerDay;
          assert.ok(perTable <= Math.floor(BIGQUERY_QUOTAS.tableJobsPerDay * fraction) + 1);
          assert.ok(perTable * tables <= BIGQUERY_QUOTAS.projectJobsPerDay * fraction + tables);
          assert.ok(
            plan.windowSeconds >= DAY / Math.floor(BIGQUERY_QUOTAS.tableJobsPerDay * fraction) - 1e-9,
          );
          // Below 10,000 objects a window, the table takes exactly one job a window.
          if ((objectsPerDay * plan.windowSeconds) / DAY <= 10_000) {
            assert.equal(jobsPerWindow(plan, BIGQUERY_QUOTAS, objectsPerDay), 1);
          }
        },
      ),
    );
  });
});
