"""stemd's benchmarks, apart from the product code they measure: `stemd bench` dispatches here.

Row providers (`streaming`, `quality`, `backends`, `refine`) return BenchRows for one shared table;
suites (`voice`, `intent`, `osc_load`) run their own rig and have a `main(argv)`. Results, and plots
where a curve says more, are written to `benchmarks/results/`.
"""
