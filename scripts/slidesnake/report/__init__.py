"""The report's HTML pages: :mod:`.html` (tables, intervals, QC grid: the building blocks),
:mod:`.dataset_page` (one dataset's or cohort's numbers) and :mod:`.study_page` (the study summary with
its headline, the QC page, the provenance page). Rules read the tables and write what these return."""
