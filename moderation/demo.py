"""Demo mail for a trial run: realistic reports in several languages, built as real MIME."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import format_datetime

from django.utils import timezone

# (sender, display name, subject, body)
DEMO_REPORTS: list[tuple[str, str, str, str]] = [
    (
        "amira@example.org",
        "Amira K.",
        "Terrorist channel",
        "Hello, the channel t.me/execution_news_24 posts execution videos every day. Please block it.",
    ),
    (
        "jean@example.fr",
        "Jean Dupont",
        "Chaîne de propagande",
        "Bonjour, la chaîne https://telegram.me/Execution_News_24 diffuse des vidéos d'exécutions. Merci de la bloquer.",
    ),
    (
        "omar@example.net",
        "عمر",
        "قناة إرهابية",
        "السلام عليكم، هذه القناة t[.]me/execution_news_24 تنشر مقاطع إعدام. يرجى حظرها.",
    ),
    (
        "lena@example.de",
        "Lena",
        "Bot verkauft Waffen",
        "Der Bot @weapons_shop_bot verkauft Waffen, siehe t.me/weapons_shop_bot?start=catalog. Bitte sperren.",
    ),
    (
        "ivan@example.ru",
        "Иван",
        "Мошенничество",
        "Этот канал обманывает людей: https://t.me/s/crypto_double_now . Пожалуйста, заблокируйте.",
    ),
    (
        "ayse@example.com.tr",
        "Ayşe",
        "Şiddet içerikli grup",
        "Bu grup şiddet videoları paylaşıyor: t.me/joinchat/AAAAAEx4mPl3Kd9q lütfen engelleyin.",
    ),
    (
        "carlos@example.es",
        "Carlos",
        "Stickers de propaganda",
        "Este paquete de stickers glorifica el terrorismo: t.me/addstickers/JihadFlags2026",
    ),
    (
        "budi@example.id",
        "Budi",
        "Laporan saluran",
        "Saluran ini menyebarkan propaganda teroris: tg://resolve?domain=execution_news_24 tolong blokir.",
    ),
    (
        "sara@example.ir",
        "سارا",
        "گزارش کانال",
        "این کانال https://t.me/execution_news_24/1234 ویدیوهای اعدام منتشر می‌کند، لطفا آن را مسدود کنید.",
    ),
    ("li@example.cn", "李", "举报频道", "这个频道发布处决视频，请封锁它：t.me/execution_news_24"),
    (
        "priya@example.in",
        "Priya",
        "Private chat",
        "Someone harasses me in a private group: https://t.me/c/1234567890/42 please help.",
    ),
    (
        "activist@example.org",
        "A. Activist",
        "Opposition channel",
        "Please block t.me/free_press_opposition, they criticise our government!",
    ),
]


def demo_messages() -> list[bytes]:
    """The demo reports as raw RFC 5322 bytes, plus one follow-up and one auto-reply."""
    now = timezone.now()
    messages: list[bytes] = []
    first_id = ""
    for number, (sender, name, subject, body) in enumerate(DEMO_REPORTS):
        mail = EmailMessage()
        mail["From"] = f"{name} <{sender}>"
        mail["To"] = "abuse@abusedesk.localhost"
        mail["Subject"] = subject
        mail["Date"] = format_datetime(now)
        mail["Message-ID"] = f"<demo-{number}@{sender.split('@')[1]}>"
        first_id = first_id or mail["Message-ID"]
        mail.set_content(body)
        messages.append(mail.as_bytes())
    follow_up = EmailMessage()
    follow_up["From"] = "Amira K. <amira@example.org>"
    follow_up["To"] = "abuse@abusedesk.localhost"
    follow_up["Subject"] = "Re: Terrorist channel"
    follow_up["In-Reply-To"] = first_id
    follow_up["References"] = first_id
    follow_up["Message-ID"] = "<demo-follow-up@example.org>"
    follow_up.set_content("They also run a backup channel: t.me/execution_news_backup")
    messages.append(follow_up.as_bytes())
    auto = EmailMessage()
    auto["From"] = "jean@example.fr"
    auto["To"] = "abuse@abusedesk.localhost"
    auto["Subject"] = "Absence du bureau"
    auto["Auto-Submitted"] = "auto-replied"
    auto["Message-ID"] = "<demo-auto-reply@example.fr>"
    auto.set_content("Je suis absent jusqu'au 3 décembre.")
    messages.append(auto.as_bytes())
    return messages
