"""The anomaly model: learns what normal traffic looks like per locality, service and hour of week,
and alerts on what departs from it (error storms, auth-failure surges, slowdowns, silence).

    features     composite aggregations -> one row per (locality, service, bucket)
    baseline/    the seasonal model (fit) and its versioned files (persistence)
    scoring      per-feature tests with small-count guards
    silence      outages told apart from silent collectors and quiet hours
    probes       endpoints whose health probe keeps failing
    unsynced     dossiers the one-stop shop changed that never reached the national portal
    syncjob      the sync job's own runs: a commune it keeps failing (syncstop: a job that stopped)
    explain      alerts with observed vs expected, band, since when (explain_sync: the sync's)
    flows        train, evaluate (the scheduler's entry point), run_due with a checkpoint
    series       the live series (counts, failure counts) and who was heard, per bucket
    live         the live streaming detector: a StreamBank per province, checkpointed
    stream/      the one streaming engine (causal, online, checkpointable, calibrated scores),
                 its bank of live series, the calendar (Vietnam's holidays as rest days)
    csvscore     ``score-csv``: the streaming engine run over any ``timestamp,value[,...]`` file
    cli          ``soc anomaly train | score | score-csv``

It must not import the Sigma engine, and writes only ``<prefix>-alerts`` (its alerts) and its own
checkpoint documents in ``<prefix>-state``.
"""
