"""testdata.py - where the Python tests find the shared test data (models, tokenizers, goldens):
$CLLM_TESTDATA when set (ctest sets it), else testdata/ in the repository. A
missing folder ends the test with a message (exit status 1). The C tests use tests/testdata.h.

Tests in tests/<module>/ import it with
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from testdata import TESTDATA, td_path
"""
import os
import sys

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def testdata_dir():
    d = os.environ.get("CLLM_TESTDATA") or os.path.join(_REPO, "testdata")
    d = os.path.normpath(d)
    if not os.path.isdir(d):
        sys.exit("test data folder '%s' not found (set CLLM_TESTDATA)" % d)
    return d


TESTDATA = testdata_dir()


def td_path(*parts):
    """<testdata>/<parts...>"""
    return os.path.join(TESTDATA, *parts)
