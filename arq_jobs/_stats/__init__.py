"""Operator statistics: per minute and per hour, for each task on each queue, how many attempts ended
(succeeded, failed, retried, cancelled, dead-lettered) and how long they waited and ran (histograms
with fixed buckets), and each queue's depth sampled every few seconds.

The scripts that end an attempt write them (`includes/stats.lua`, called by the transition); one worker
per queue and tick samples the depth (`depth`); `reader` reads a window back for `GET /stats`, the
CLI's `stats` and the dashboard's charts.
"""
