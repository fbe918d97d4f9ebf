"""Small real-world-style files and messages for each class of input defect in issue 10, built by
code (nothing copied from other projects): see build.py, and test_corpus.py for what each gives."""
