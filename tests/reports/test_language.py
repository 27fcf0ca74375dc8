"""Language detection on short reports, with links and handles in them."""

from __future__ import annotations

import pytest

from reports.language import detect_language

SAMPLES = [
    ("en", "This channel posts execution videos, please block it: t.me/some_channel"),
    ("ar", "هذه القناة تنشر مقاطع إعدام، يرجى حظرها t.me/some_channel"),
    ("fr", "Cette chaîne publie des vidéos d'exécutions, merci de la bloquer."),
    ("de", "Dieser Kanal veröffentlicht Hinrichtungsvideos, bitte sperren Sie ihn."),
    ("ru", "Этот канал публикует видео казней, пожалуйста заблокируйте его."),
    ("tr", "Bu kanal infaz videoları paylaşıyor, lütfen engelleyin."),
    ("es", "Este canal publica vídeos de ejecuciones, por favor bloquéenlo."),
    ("id", "Saluran ini memposting video eksekusi, tolong blokir."),
    ("fa", "این کانال ویدیوهای اعدام منتشر می‌کند، لطفا آن را مسدود کنید."),
    ("ur", "یہ چینل پھانسی کی ویڈیوز پوسٹ کرتا ہے، براہ کرم اسے بلاک کریں۔"),
    ("zh", "这个频道发布处决视频，请封锁它：t.me/execution_news_24"),
    ("hi", "यह चैनल फांसी के वीडियो पोस्ट करता है, कृपया इसे ब्लॉक करें।"),
]


@pytest.mark.parametrize(("expected", "text"), SAMPLES, ids=[s[0] for s in SAMPLES])
def test_the_twelve_required_languages_are_told_apart(expected, text):
    assert detect_language(text) == expected


def test_links_alone_give_no_language():
    assert detect_language("t.me/some_channel https://t.me/other @handle_bot") == ""


def test_too_little_text_gives_no_language():
    assert detect_language("hi") == ""
