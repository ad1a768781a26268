"""A/B tests of two retrieval setups.

- :mod:`~dcar.abtest.offline`: two evaluations on the same test set, query by query: per-query
  records, paired-bootstrap intervals on the difference in Recall@K, exact McNemar test on R@1,
  per-category wins and losses, TREC run files;
- :mod:`~dcar.abtest.online`: live traffic split between two arms (sticky hashed assignment or
  team-draft interleaving), the append-only event log and its analysis (`dcar ab report`);
- :mod:`~dcar.abtest.simulate`: synthetic users to check the online analysis (power, false positives).
"""
