"""FastDetector against the real langdetect: the same (language, probability) lists, bit for bit.

Every comparison runs langdetect itself (``factory.create()``, ``n_trial``, ``append``,
``get_probabilities``) as the oracle; nothing is mocked. Floats are compared with ``==``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langdetect import DetectorFactory
from langdetect.detector import Detector
from langdetect.detector_factory import PROFILES_DIRECTORY
from langdetect.lang_detect_exception import ErrorCode, LangDetectException

from flows import langdetect_numpy as fastdetect
from flows.langdetect_numpy import FastDetector, prepare_text

REPO = Path(__file__).resolve().parents[1]
SEEDS = sorted((REPO / "seeds").glob("*.txt"))
SHARED = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"
HAN_LANGUAGES = ("ja", "zh-cn", "zh-tw")

# What one detection gave: the pairs, or the type and message of what it raised.
Outcome = list[tuple[str, float]] | tuple[str, str]


@pytest.fixture(scope="module")
def profiles() -> DetectorFactory:
    """All of langdetect's profiles, loaded once (seedless; copied per seed below)."""
    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    return factory


def _seeded(profiles: DetectorFactory, seed: int) -> DetectorFactory:
    factory = DetectorFactory()
    factory.langlist = profiles.langlist
    factory.word_lang_prob_map = profiles.word_lang_prob_map
    factory.set_seed(seed)
    return factory


@pytest.fixture(scope="module")
def pairs(profiles: DetectorFactory) -> dict[int, tuple[DetectorFactory, FastDetector]]:
    """Seed -> (langdetect factory, FastDetector built from it), for seeds 0 and 42."""
    out = {}
    for seed in (0, 42):
        factory = _seeded(profiles, seed)
        out[seed] = (factory, FastDetector.from_factory(factory))
    return out


@pytest.fixture(scope="module")
def han_pair() -> tuple[DetectorFactory, FastDetector]:
    """Like flows.stages.language._han_factory: three profiles via load_json_profile."""
    factory = DetectorFactory()
    factory.load_json_profile(
        [Path(PROFILES_DIRECTORY, name).read_text(encoding="utf-8") for name in HAN_LANGUAGES]
    )
    factory.set_seed(0)
    return factory, FastDetector.from_factory(factory)


def langdetect_outcome(
    factory: DetectorFactory, text: str, n_trial: int, alpha: float | None = None
) -> Outcome:
    detector = factory.create(alpha)
    detector.n_trial = n_trial
    detector.append(text)
    try:
        return [(str(lang.lang), float(lang.prob)) for lang in detector.get_probabilities()]
    except (LangDetectException, ZeroDivisionError) as error:
        return type(error).__name__, str(error)


def fast_outcome(
    fast: FastDetector, text: str, n_trial: int, alpha: float = fastdetect.ALPHA_DEFAULT
) -> Outcome:
    try:
        return fast.probabilities(text, n_trial, alpha=alpha)
    except (LangDetectException, ZeroDivisionError) as error:
        return type(error).__name__, str(error)


def assert_same(factory: DetectorFactory, fast: FastDetector, text: str, n_trial: int) -> None:
    expected = langdetect_outcome(factory, text, n_trial)
    assert fast_outcome(fast, text, n_trial) == expected, (text[:80], n_trial)


def assert_same_ngrams(factory: DetectorFactory, fast: FastDetector, text: str) -> None:
    """The prepared text and the n-gram list (whose order random.choice depends on)."""
    detector = factory.create()
    detector.append(text)
    detector.cleaning_text()
    assert prepare_text(text) == detector.text, text[:80]
    assert fast.ngrams(text) == detector._extract_ngrams(), text[:80]


def _seed_texts() -> Iterator[str]:
    for path in SEEDS:
        text = path.read_text(encoding="utf-8")
        yield text
        yield text[:1000]
        yield from (line for line in text.split("\n") if line.strip())


# Russian, Ukrainian and Bulgarian stay close: langdetect's trials run to ITERATION_LIMIT.
ITERATION_LIMIT_TEXT = "Ни записи, ни мысли, ни слова К ним не дойдут"
LONG = "Die Verhandlungen wurden nach drei Wochen abgebrochen.  " * 250  # > max_text_length

SPECIAL = [
    "",
    " ",
    "   \n\t  ",
    "12345 67.89 -- 2024/05/06 !!! ??? ... (((",
    "€ 100 — § 3 — № 5 — ½ ¾",
    "a",
    "Z",
    "Visit https://example.com/path?x=1&y=2#frag or http://foo.bar/baz for details about the vote.",
    "Write to jane.doe@example.org or press-office@ministry.gov.uk before Friday, please.",
    "https://only.a.url/with/nothing/else",
    "someone@example.com",
    "THE COMMITTEE WILL PUBLISH ITS FINAL REPORT NEXT WEEK AFTER THE VOTE",
    "NASA and the ESA said the ISS crew (USA, RU, JP) are fine; the UN and EU agree. OK?",
    "McDonald's iPhone eBay HTTPServer XMLHttpRequest DiE VeRhAnDlUnGeN",
    "Tiếng Việt là ngôn ngữ chính thức của Việt Nam, được sử dụng bởi hơn 85 triệu người.",
    # Vietnamese with decomposed marks (vowel + U+0300..U+0323), which normalize_vi composes.
    "Tie\u0302\u0301ng Vie\u0323\u0302t la\u0300 ngo\u0302n ngu\u031b\u0303 chi\u0301nh thu\u031b\u0301c cu\u0309a Vie\u0323\u0302t Nam.",
    "中华人民共和国是工人阶级领导的、以工农联盟为基础的人民民主专政的社会主义国家。",
    "中華民國憲法是中華民國的根本大法，於一九四六年制定，翌年施行。",
    "日本国民は、正当に選挙された国会における代表者を通じて行動し、われらとわれらの子孫のために。",
    "ひらがなだけのぶんしょうです カタカナダケノブンショウデス",
    "대한민국은 민주공화국이다. 대한민국의 주권은 국민에게 있고, 모든 권력은 국민으로부터 나온다.",
    "ㄅㄆㄇㄈ ㄉㄊㄋㄌ 注音符號",
    "الإعلان العالمي لحقوق الإنسان was adopted by the UN General Assembly in Paris in 1948.",
    "این یک متن فارسی است که حرف ی دارد و باید به ي تبدیل شود.",
    "Всеобщая декларация прав человека (Universal Declaration of Human Rights) принята ООН.",
    "Москва — столица России. Moscow is the capital of Russia. Москва большая.",
    "Η Οικουμενική Διακήρυξη για τα Ανθρώπινα Δικαιώματα υιοθετήθηκε το 1948.",
    "עברית היא שפה שמית, ממשפחת השפות האפרו-אסיאתיות, והיא שפת האם של רוב היהודים.",
    "हिन्दी विश्व की एक प्रमुख भाषा है एवं भारत की राजभाषा है। Hindi is spoken widely.",
    "ภาษาไทยเป็นภาษาที่มีระดับเสียงของคำแน่นอนหรือวรรณยุกต์เช่นเดียวกับภาษาจีน",
    "Românește: știință și țară, școală și învățătură; ş ţ with cedilla too.",
    "«Bonjour» dit-il\u00a0: «°C»; ça va très bien, merci beaucoup à vous.",
    "Quotes “like these” and ‘these’ – dashes — ellipsis… bullets • and ‰ signs",
    "tab\tseparated\tfields\nand\r\nnew lines\u2028line separator\u3000ideographic space",
    "lone surrogate \ud800 in the middle of english text about the weather",
    "ǅemal ǈubljana ǋegoš: titlecase digraphs and ＦＵＬＬＷＩＤＴＨ ｌｅｔｔｅｒｓ",
    "Ⓐⓑ ⅠⅡⅢ ℌℑ 𝐀𝐁𝐂 𝒜ℬ — other uppercase and mathematical letters",
    "emoji 😀🎉👍 and text in english about a party that went well",
    LONG,
    "x" * 12_000,
    "ab " * 6_000,
    ITERATION_LIMIT_TEXT,
]


@pytest.mark.parametrize("n_trial", [1, 3, 7])
def test_seed_articles(
    pairs: dict[int, tuple[DetectorFactory, FastDetector]], n_trial: int
) -> None:
    factory, fast = pairs[0]
    for text in _seed_texts():
        assert_same(factory, fast, text, n_trial)


@pytest.mark.parametrize("seed", [0, 42])
@pytest.mark.parametrize("n_trial", [1, 3, 7])
def test_special_texts(
    pairs: dict[int, tuple[DetectorFactory, FastDetector]], seed: int, n_trial: int
) -> None:
    factory, fast = pairs[seed]
    for text in SPECIAL:
        assert_same(factory, fast, text, n_trial)


def test_prepared_text_and_ngram_order(
    pairs: dict[int, tuple[DetectorFactory, FastDetector]],
) -> None:
    factory, fast = pairs[0]
    for text in [*SPECIAL, *_seed_texts()]:
        assert_same_ngrams(factory, fast, text)


def test_exceptions_are_langdetects(pairs: dict[int, tuple[DetectorFactory, FastDetector]]) -> None:
    _, fast = pairs[0]
    for text in ["", "1234 5678", "!!! ??? ...", "https://example.com", "a@b.cd"]:
        with pytest.raises(LangDetectException) as raised:
            fast.probabilities(text)
        assert raised.value.get_code() == ErrorCode.CantDetectError


def test_results_are_the_seeds(pairs: dict[int, tuple[DetectorFactory, FastDetector]]) -> None:
    """Seeds 0 and 42 give different floats (so the seed is really used), and a result
    does not depend on what ran before nor on the global random stream."""
    text = "Die Gewerkschaft hat die Verhandlungen mit den Studios abgebrochen."
    fresh = FastDetector.from_factory(pairs[0][0])
    first = fresh.probabilities(text, 3)
    pairs[0][1].probabilities("Something else entirely, in English this time.", 7)
    random.seed(5)
    random.random()
    assert pairs[0][1].probabilities(text, 3) == first
    assert first != pairs[42][1].probabilities(text, 3)


def test_subset_factory(han_pair: tuple[DetectorFactory, FastDetector]) -> None:
    factory, fast = han_pair
    assert fast.languages == list(HAN_LANGUAGES)
    texts = [t for t in SPECIAL if t] + [
        "我们今天去北京大学参观了图书馆和博物馆。",
        "我們今天去臺灣大學參觀了圖書館和博物館。",
        "私たちは今日、東京大学の図書館と博物館を見学しました。",
        "English only text that has nothing Chinese in it at all",
    ]
    for text in texts:
        for n_trial in (1, 3, 7):
            assert_same(factory, fast, text, n_trial)


@pytest.mark.parametrize("alpha", [0.0, -0.5, 0.1, 2.0, 1e-9])
def test_other_alphas(pairs: dict[int, tuple[DetectorFactory, FastDetector]], alpha: float) -> None:
    """``factory.create(alpha)``. Near or under 0 the weights turn negative, and so can the
    totals: that exercises the element-by-element normalisation."""
    factory, fast = pairs[0]
    for text in [*SPECIAL[7:16], "Die Verhandlungen wurden abgebrochen."]:
        for n_trial in (1, 7):
            expected = langdetect_outcome(factory, text, n_trial, alpha)
            assert fast_outcome(fast, text, n_trial, alpha) == expected, (text, alpha)


def test_memos_do_not_change_results(
    pairs: dict[int, tuple[DetectorFactory, FastDetector]], monkeypatch: pytest.MonkeyPatch
) -> None:
    factory, _ = pairs[0]
    fresh = FastDetector.from_factory(factory)
    texts = [t for t in SPECIAL if len(t) < 500][:20]
    first = [fast_outcome(fresh, text, 3) for text in texts]
    assert [fast_outcome(fresh, text, 3) for text in texts] == first  # memos warm
    monkeypatch.setattr(fastdetect, "_CACHE_LIMIT", 3)  # emptied over and over
    assert [fast_outcome(fresh, text, 3) for text in texts] == first
    assert first == [langdetect_outcome(factory, text, 3) for text in texts]


def test_rejects_a_factory_without_profiles() -> None:
    with pytest.raises(LangDetectException):
        FastDetector.from_factory(DetectorFactory())


# Pieces of text hypothesis combines: words of many scripts, single characters that
# NGram.normalize or cleaning_text treat specially, URLs, e-mails, runs of spaces.
WORDS = [
    "the",
    "The",
    "THE",
    "and",
    "Verhandlungen",
    "über",
    "ÜBER",
    "straße",
    "ça",
    "été",
    "Москва",
    "МОСКВА",
    "привет",
    "Αθήνα",
    "ΑΘΗΝΑ",
    "שלום",
    "سلام",
    "یک",
    "नमस्ते",
    "ভাষা",
    "ภาษา",
    "中国",
    "東京",
    "ひらがな",
    "カタカナ",
    "한국어",
    "ㄅㄆ",
    "Tiếng",
    "Việt",
    "Vie\u0323\u0302t",
    "știință",
    "țară",
    "NASA",
    "iPhone",
    "McDonald",
    "ǅemal",
    "http://example.com/a?b=c",
    "https://x.y",
    "a.b@c.de",
    "x@y",
    "2024",
    "3.14",
    "—",
    "…",
    "«",
    "»",
    "\u00a0",
    "\u3000",
    "😀",
    "a",
    "I",
    "A",
    "ÀÉÎ",
    "ab",
    "AB",
]
CHARS = "aAzZ09 .,;:!?-_@/\t\n\u00a0\u00e9\u00c9\u0219\u021b\u06cc\u0300\u0301\u0303\u0309\u0323\u1ea0\u1ec3\u3042\u30a2\u3105\u4e00\uac00\u2014\u0416\u0436\u05d0\u0627"

pieces = st.one_of(
    st.sampled_from(WORDS),
    st.text(alphabet=CHARS, min_size=1, max_size=8),
    st.sampled_from([" ", "  ", "   ", "\n"]),
)
texts = st.lists(pieces, min_size=0, max_size=60).map(" ".join)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=texts, n_trial=st.sampled_from([1, 3, 7]), seed=st.sampled_from([0, 42]))
def test_property_identical_to_langdetect(
    pairs: dict[int, tuple[DetectorFactory, FastDetector]], text: str, n_trial: int, seed: int
) -> None:
    factory, fast = pairs[seed]
    assert_same(factory, fast, text, n_trial)
    assert_same_ngrams(factory, fast, text)


def test_a_trial_can_run_to_the_iteration_limit(
    pairs: dict[int, tuple[DetectorFactory, FastDetector]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The text above takes langdetect past 1,000 updates in a trial (so FastDetector's
    later gatherings of rows and its longer random stream are used), with the same result."""
    factory, fast = pairs[0]
    trials: list[int] = []  # updates per trial
    start = Detector._init_probability
    update = Detector._update_lang_prob

    def started(self: Detector) -> list[float]:
        trials.append(0)
        return list(start(self))

    def counted(self: Detector, prob: list[float], word: str, alpha: float) -> bool:
        trials[-1] += 1
        return bool(update(self, prob, word, alpha))

    monkeypatch.setattr(Detector, "_init_probability", started)
    monkeypatch.setattr(Detector, "_update_lang_prob", counted)
    expected = langdetect_outcome(factory, ITERATION_LIMIT_TEXT, 3)
    monkeypatch.undo()
    assert len(trials) == 3 and max(trials) == Detector.ITERATION_LIMIT + 1
    assert fast_outcome(fast, ITERATION_LIMIT_TEXT, 3) == expected


@settings(max_examples=300, deadline=None)
@given(
    seed=st.one_of(st.integers(0, 2**40), st.sampled_from(["langdetect", b"x", 0.5])),
    size=st.one_of(
        st.integers(1, 70), st.integers(1, 40_000), st.sampled_from([2**k for k in range(16)])
    ),
    counts=st.lists(st.integers(0, 400), min_size=1, max_size=9),
    extra=st.integers(0, 50),
)
def test_draws_are_random_randoms(
    seed: int | str | bytes | float, size: int, counts: list[int], extra: int
) -> None:
    """The stream reproduces random.Random: gauss(0.0, 1.0) before each run of choice()
    draws over a list of ``size`` items, whatever was looked at beyond what was used."""
    expected = random.Random(seed)
    draws = fastdetect._Draws(fastdetect._Stream(seed), list(range(size)))
    for count in counts:
        assert draws.gauss() == expected.gauss(0.0, 1.0)
        want = [expected.choice(range(size)) for _ in range(count)]
        assert draws.peek(count + extra).tolist()[:count] == want
        draws.consume(count)


def test_seedless_detector_answers() -> None:
    """Without a seed langdetect draws from the system; so does FastDetector: still a
    distribution over the languages, most probable first."""
    factory = DetectorFactory()
    factory.load_json_profile(
        [Path(PROFILES_DIRECTORY, name).read_text(encoding="utf-8") for name in HAN_LANGUAGES]
    )
    fast = FastDetector.from_factory(factory)
    found = fast.probabilities("私たちは今日、東京大学の図書館と博物館を見学しました。", 7)
    assert found and found[0][0] == "ja"
    assert [p for _, p in found] == sorted((p for _, p in found), reverse=True)
    assert 0.0 < sum(p for _, p in found) <= 1.0 + 1e-9


needs_shared = pytest.mark.skipif(
    not (SHARED / "language").is_dir() or not (SHARED / "language-udhr").is_dir(),
    reason="../shared/benchmarks is absent",
)


@needs_shared
def test_shared_benchmark_texts(pairs: dict[int, tuple[DetectorFactory, FastDetector]]) -> None:
    """Sentences of lingua's 75 languages, word pairs, UDHR paragraphs of langdetect's 55."""
    factory, fast = pairs[0]
    rng = random.Random(1)
    count = 0
    for folder in sorted((SHARED / "language").iterdir()):
        for kind, take, n_trial in (("sentences", 4, 3), ("word-pairs", 2, 3)):
            path = folder / f"{kind}.txt"
            if path.is_file():
                lines = [line for line in path.read_text(encoding="utf-8").split("\n") if line]
                for line in rng.sample(lines, min(take, len(lines))):
                    assert_same(factory, fast, line, n_trial)
                    count += 1
    for folder in sorted((SHARED / "language-udhr").iterdir()):
        path = folder / "udhr.txt"
        if path.is_file():
            paragraphs = [p for p in path.read_text(encoding="utf-8").split("\n") if p]
            for paragraph in paragraphs[:2]:
                assert_same(factory, fast, paragraph, 7)
                count += 1
            assert_same(factory, fast, "\n".join(paragraphs)[:1000], 7)
            count += 1
    assert count > 400


def _shared_sentences() -> list[list[str]]:
    """lingua's test sentences, per language (empty where the shared data is absent)."""
    folder = SHARED / "language"
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("*/sentences.txt")):
        lines = [line for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
        if lines:
            found.append(lines)
    return found


SENTENCES = _shared_sentences()


@pytest.mark.skipif(not SENTENCES, reason="../shared/benchmarks is absent")
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    picks=st.lists(
        st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)), min_size=1, max_size=12
    ),
    cut=st.integers(20, 1_500),
    n_trial=st.sampled_from([1, 3, 7]),
    seed=st.sampled_from([0, 42]),
)
def test_property_shared_sentences(
    pairs: dict[int, tuple[DetectorFactory, FastDetector]],
    picks: list[tuple[int, int]],
    cut: int,
    n_trial: int,
    seed: int,
) -> None:
    """Sentences of any of lingua's languages, one or several (mixed) joined by newlines,
    cut anywhere: the same answer as langdetect, float for float."""
    chosen = []
    for language, line in picks:
        lines = SENTENCES[language % len(SENTENCES)]
        chosen.append(lines[line % len(lines)])
    factory, fast = pairs[seed]
    assert_same(factory, fast, "\n".join(chosen)[:cut], n_trial)
