"""Script-aware prose detection: every script's sentence marks, Thai/Lao without any,
right-to-left text, and articles in those scripts keeping every paragraph."""

from __future__ import annotations

import pytest

from flows.stages.boilerplate import OUTSIDE_MAIN_CONTENT, Cleaned, clean
from flows.stages.compose import StageConfig
from flows.stages.maincontent import ends_sentence, line_words, prose_words

# One sentence per script, ending with that script's own sentence mark (written for these
# tests). Each is long enough to be prose on its own.
SENTENCES = {
    "bn-danda": "আজ সকালে শহরের প্রধান সড়কে যান চলাচল বন্ধ ছিল কারণ সেখানে একটি বড় সমাবেশ হয়েছিল।",
    "hi-danda": "सरकार ने आज घोषणा की कि अगले महीने से सभी स्कूलों में नई पाठ्यपुस्तकें दी जाएंगी।",
    "hi-double-danda": "सरकार ने आज घोषणा की कि अगले महीने से सभी स्कूलों में नई पुस्तकें दी जाएंगी॥",
    "pa-danda": "ਪਿੰਡ ਦੇ ਲੋਕਾਂ ਨੇ ਮਿਲ ਕੇ ਨਵਾਂ ਸਕੂਲ ਬਣਾਇਆ ਅਤੇ ਬੱਚਿਆਂ ਲਈ ਇੱਕ ਵੱਡੀ ਲਾਇਬ੍ਰੇਰੀ ਵੀ ਖੋਲ੍ਹੀ।",
    "ur-full-stop": "حکومت نے اعلان کیا ہے کہ اگلے مہینے سے تمام سرکاری اسکولوں میں نئی کتابیں دی جائیں گی۔",
    "ar-question": "هل ستستمر المفاوضات بين الطرفين خلال الأسابيع القادمة أم ستتوقف مرة أخرى؟",
    "ar-full-stop": "أعلنت الحكومة اليوم أن جميع المدارس ستحصل على كتب جديدة في بداية العام المقبل.",
    "fa-full-stop": "دولت امروز اعلام کرد که از ماه آینده کتاب‌های جدید به همه مدرسه‌ها داده می‌شود.",
    "he-rlm": "הממשלה הודיעה היום כי כל בתי הספר יקבלו ספרי לימוד חדשים בתחילת השנה הבאה.\u200f",
    "hy-full-stop": (
        "Կառավարությունը այսօր հայտարարեց, որ բոլոր դպրոցները նոր դասագրքեր "
        "կստանան հաջորդ տարվա սկզբին\u0589"
    ),
    "am-full-stop": "መንግሥት ዛሬ እንዳስታወቀው በሚቀጥለው ዓመት ሁሉም ትምህርት ቤቶች አዲስ መጻሕፍት ያገኛሉ\u1362",
    "my-section": "အစိုးရက ယနေ့ ကျောင်းအားလုံးကို စာအုပ်အသစ်များနှင့် ကွန်ပျူတာများ ပေးမည်ဟု ကြေညာခဲ့သည်\u104b",
    "km-khan": "រដ្ឋាភិបាលបានប្រកាសថា សាលារៀនទាំងអស់នឹងទទួលបានសៀវភៅថ្មីនៅដើមឆ្នាំក្រោយ\u17d4",
    "zh-full-stop": "政府今天宣布，从下个月开始，所有学校都将获得新的教科书和学习用品。",
    "ja-full-stop": "政府は今日、来月からすべての学校に新しい教科書を配布すると発表した。",
    "ja-quoted": "「来月からすべての学校に新しい教科書を配布する予定です。」",
    "ja-exclamation": "来月からすべての学校に新しい教科書が配布されることになりました！",
    "el-question": "Θα συνεχιστούν οι διαπραγματεύσεις μεταξύ των δύο πλευρών τις επόμενες εβδομάδες;",
    "en-quoted": 'She said the talks would go on for at least another two weeks, "if not longer."',
}

# Thai and Lao have no sentence marks: a paragraph just stops.
UNPUNCTUATED = {
    "th": (
        "รัฐบาลประกาศในวันนี้ว่าโรงเรียนทุกแห่งจะได้รับหนังสือเรียนเล่มใหม่ตั้งแต่เดือนหน้าเป็นต้นไป "
        "และครูทุกคนจะได้รับการอบรมเพิ่มเติมในช่วงปิดภาคเรียน"
    ),
    "lo": (
        "ລັດຖະບານໄດ້ປະກາດໃນມື້ນີ້ວ່າໂຮງຮຽນທຸກແຫ່ງຈະໄດ້ຮັບປຶ້ມແບບຮຽນໃໝ່ຕັ້ງແຕ່ເດືອນໜ້າເປັນຕົ້ນໄປ "
        "ແລະຄູທຸກຄົນຈະໄດ້ຮັບການຝຶກອົບຮົມເພີ່ມເຕີມ"
    ),
}


@pytest.mark.parametrize("name", sorted(SENTENCES))
def test_each_scripts_sentence_mark_ends_a_sentence(name: str) -> None:
    sentence = SENTENCES[name]
    assert ends_sentence(sentence)
    assert prose_words(sentence) > 0


@pytest.mark.parametrize(
    "mark",
    [
        "\u0964",  # danda
        "\u0965",  # double danda
        "\u06d4",  # Arabic full stop (Urdu)
        "\u061f",  # Arabic question mark
        "\u0589",  # Armenian full stop
        "\u3002",  # ideographic full stop
        "\uff01",  # full-width exclamation mark
        "\uff1f",  # full-width question mark
        "\u1362",  # Ethiopic full stop
        "\u104b",  # Myanmar section
        "\u17d4",  # Khmer khan
        "\u0f0d",  # Tibetan shad
    ],
)
def test_sentence_marks(mark: str) -> None:
    assert ends_sentence(f"word{mark}")
    assert ends_sentence(f"word{mark}\u201d")  # a closing quote after it
    assert ends_sentence(f"word{mark}\u200f")  # a right-to-left mark after it
    assert not ends_sentence("word")


@pytest.mark.parametrize("lang", sorted(UNPUNCTUATED))
def test_thai_and_lao_prose_is_judged_by_length_and_letters(lang: str) -> None:
    paragraph = UNPUNCTUATED[lang]
    assert not ends_sentence(paragraph)
    assert prose_words(paragraph) > 0
    # Short lines of the same script (a menu item, a headline) are not prose.
    assert prose_words(paragraph[:30]) == 0
    # Nor is a long line made mostly of digits (Thai digits here) and symbols.
    assert prose_words(" ".join(["\u0e52\u0e55\u0e56\u0e57", "#"] * 12) + paragraph[:10]) == 0


def test_words_keep_their_combining_marks() -> None:
    # Bengali vowel signs are not ``\w``: a word must not split at each of them.
    assert line_words("আজ সকালে শহরের প্রধান সড়কে") == 5
    assert line_words("सरकार ने आज घोषणा की") == 5


# Articles in the scripts the issue found failing: a menu above, a subheading in the
# middle, furniture below. Every paragraph must stay.
ARTICLES = {
    "bn": [
        "আজ সকালে শহরের প্রধান সড়কে যান চলাচল বন্ধ ছিল। সেখানে একটি বড় সমাবেশ হয়েছিল এবং হাজার হাজার মানুষ অংশ নিয়েছিলেন।",
        "পুলিশ জানিয়েছে যে দুপুরের পর থেকে পরিস্থিতি স্বাভাবিক হতে শুরু করে। কোনো বড় দুর্ঘটনার খবর পাওয়া যায়নি।",
        "স্থানীয় ব্যবসায়ীরা বলেছেন যে দোকানপাট বন্ধ থাকায় তাদের অনেক ক্ষতি হয়েছে। তারা সরকারের কাছে সাহায্য চেয়েছেন।",
        "সমাবেশের আয়োজকরা বলেছেন যে তাদের দাবি পূরণ না হলে আগামী সপ্তাহে আবার কর্মসূচি দেওয়া হবে।",
    ],
    "hi": [
        "सरकार ने आज घोषणा की कि अगले महीने से सभी स्कूलों में नई पाठ्यपुस्तकें दी जाएंगी। इससे लाखों बच्चों को लाभ होगा।",
        "शिक्षा मंत्री ने कहा कि शिक्षकों को भी नई पुस्तकों के लिए विशेष प्रशिक्षण दिया जाएगा। यह काम गर्मी की छुट्टियों में होगा।",
        "कई अभिभावकों ने इस फैसले का स्वागत किया है। कुछ लोगों का कहना है कि पुस्तकें समय पर पहुंचनी चाहिए।",
        "विपक्ष ने सवाल उठाया कि इस योजना के लिए पैसा कहां से आएगा और इसका हिसाब कौन रखेगा।",
    ],
    "pa": [
        "ਪਿੰਡ ਦੇ ਲੋਕਾਂ ਨੇ ਮਿਲ ਕੇ ਨਵਾਂ ਸਕੂਲ ਬਣਾਇਆ। ਬੱਚਿਆਂ ਲਈ ਇੱਕ ਵੱਡੀ ਲਾਇਬ੍ਰੇਰੀ ਵੀ ਖੋਲ੍ਹੀ ਗਈ ਹੈ।",
        "ਸਰਪੰਚ ਨੇ ਦੱਸਿਆ ਕਿ ਇਸ ਕੰਮ ਵਿੱਚ ਦੋ ਸਾਲ ਲੱਗੇ ਅਤੇ ਹਰ ਪਰਿਵਾਰ ਨੇ ਕੁਝ ਨਾ ਕੁਝ ਯੋਗਦਾਨ ਪਾਇਆ।",
        "ਅਧਿਆਪਕਾਂ ਦਾ ਕਹਿਣਾ ਹੈ ਕਿ ਹੁਣ ਬੱਚਿਆਂ ਨੂੰ ਪੜ੍ਹਨ ਲਈ ਸ਼ਹਿਰ ਨਹੀਂ ਜਾਣਾ ਪਵੇਗਾ।",
        "ਅਗਲੇ ਸਾਲ ਸਕੂਲ ਵਿੱਚ ਕੰਪਿਊਟਰ ਦੀ ਕਲਾਸ ਵੀ ਸ਼ੁਰੂ ਕੀਤੀ ਜਾਵੇਗੀ ਅਤੇ ਨਵੇਂ ਅਧਿਆਪਕ ਰੱਖੇ ਜਾਣਗੇ।",
    ],
    "ur": [
        "حکومت نے اعلان کیا ہے کہ اگلے مہینے سے تمام سرکاری اسکولوں میں نئی کتابیں دی جائیں گی۔ اس سے لاکھوں بچوں کو فائدہ ہوگا۔",
        "وزیر تعلیم نے کہا کہ اساتذہ کو بھی نئی کتابوں کے لیے خصوصی تربیت دی جائے گی۔ یہ کام گرمیوں کی چھٹیوں میں ہوگا۔",
        "کئی والدین نے اس فیصلے کا خیرمقدم کیا ہے۔ کچھ لوگوں کا کہنا ہے کہ کتابیں وقت پر پہنچنی چاہئیں۔",
        "حزب اختلاف نے سوال اٹھایا کہ اس منصوبے کے لیے پیسہ کہاں سے آئے گا؟",
    ],
    "th": [UNPUNCTUATED["th"]] * 4,
}
MENU = ["Home", "News | Sport | Culture | Video", "Menu"]
FOOTER = ["Share", "Facebook", "Twitter", "© 2024 Example News"]


@pytest.mark.parametrize("lang", sorted(ARTICLES))
def test_every_paragraph_stays_in_these_scripts(lang: str, default_config: StageConfig) -> None:
    paragraphs = [f"{p} ({n})" if lang == "th" else p for n, p in enumerate(ARTICLES[lang])]
    body = [paragraphs[0], paragraphs[1], "Subheading", paragraphs[2], paragraphs[3]]
    text = "\n\n".join([*MENU, *body, *FOOTER])
    result = clean(text, default_config.rules)
    assert isinstance(result, Cleaned)
    for paragraph in paragraphs:
        assert paragraph in result.text
    assert not [r for r in result.removed if r.text in paragraphs]
    assert {r.text for r in result.removed} >= {*MENU, *FOOTER}


def test_a_right_to_left_article_keeps_its_paragraphs(default_config: StageConfig) -> None:
    paragraphs = [SENTENCES["he-rlm"], SENTENCES["ar-full-stop"], SENTENCES["ar-question"]] * 2
    text = "\n\n".join(["الرئيسية", "أخبار", *paragraphs, "شارك"])
    result = clean(text, default_config.rules)
    assert isinstance(result, Cleaned)
    assert all(p.strip() in result.text for p in paragraphs)
    assert {r.rule for r in result.removed} <= {OUTSIDE_MAIN_CONTENT, "share"}


@pytest.mark.parametrize("name", ["bn-danda", "hi-danda", "ur-full-stop", "am-full-stop"])
def test_a_first_sentence_is_not_taken_for_a_title(name: str) -> None:
    from flows.stages.metadata import derive_title

    assert derive_title(f"{SENTENCES[name]}\n{SENTENCES['en-quoted']}") is None
