"""The TA review loop: a local web app over a graded folder (``python -m autograder review OUT``).

- :mod:`.questions`: the questions of a graded folder (ids, labels, points, function names).
- :mod:`.marks`: how human marks are layered over the autograde (pure).
- :mod:`.store`: the review store ``OUT/review.sqlite`` (rubric items, marks, audit trail);
  :mod:`.hook`: what ``grade`` records in it and applies from it.
- :mod:`.outputs`: re-collating the gradebook, exports, feedback and report after a change.
- :mod:`.notebooks`, :mod:`.render`: the students' answer code and derivations, made safe to show.
- :mod:`.context`, :mod:`.views`, :mod:`.actions`: one folder as the pages see it, what the
  pages show, and the changes the forms ask for.
- :mod:`.app`, :mod:`.security`, :mod:`.server`: the Starlette app, its guards, and ``serve``.

Only :mod:`.hook` (with :mod:`.store`, :mod:`.marks`, :mod:`.questions`) is imported by
``grade``; the web modules load their dependencies when the app starts.
"""
