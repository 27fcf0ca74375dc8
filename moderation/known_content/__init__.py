"""Known content: hash banks (TCAP, GIFCT-style lists and the desk's own), matching attachments
against them, and showing the matches to moderators as automated detection.

lists.py reads hash lists; actions.py changes banks and records matches (each audited);
index.py finds PDQ hashes by Hamming distance; matching.py matches, in q-cluster workers, what
receivers.py queues; queries.py reads matches for the workspace; admin.py and forms.py are the
leads' pages. The attachments' own hashes are computed at intake (reports/mediahash.py).
"""

from __future__ import annotations

# A PDQ match, as TCAP and GIFCT define it: Hamming distance 31 or less, at quality 50 or more.
MATCH_DISTANCE = 31
MIN_QUALITY = 50
