"""Synthetic abuse reports for the ingest benchmark: realistic in shape, deterministic for a seed.

Everything here is stdlib and independent of Django, so the benchmark driver can build the mails
before it starts any server. The texts are short report sentences written for this benchmark in
the ten languages the desk must tell apart most often; the links come in the spellings reporters
really use (plain, schemeless, defanged, @handles, tg: links, invites, sticker sets, look-alikes).
"""

from __future__ import annotations

import random
import struct
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

ABUSE_ADDRESS = "abuse@abusedesk.localhost"

# --- Text -------------------------------------------------------------------------------------

SUBJECTS: dict[str, list[str]] = {
    "en": [
        "Report: channel spreading violent propaganda",
        "Scam bot on Telegram",
        "Abuse report",
        "Please block this group",
    ],
    "ar": ["بلاغ عن قناة", "قناة تحرض على العنف", "بلاغ احتيال"],
    "fr": ["Signalement d'une chaîne", "Arnaque sur Telegram", "Contenu illégal"],
    "de": ["Meldung eines Kanals", "Betrug auf Telegram", "Bitte sperren"],
    "ru": ["Жалоба на канал", "Мошенничество в Telegram", "Прошу заблокировать"],
    "tr": ["Kanal şikayeti", "Telegram'da dolandırıcılık", "Lütfen engelleyin"],
    "es": ["Denuncia de un canal", "Estafa en Telegram", "Contenido ilegal"],
    "id": ["Laporan kanal", "Penipuan di Telegram", "Mohon diblokir"],
    "fa": ["گزارش کانال", "کلاهبرداری در تلگرام", "لطفا مسدود کنید"],
    "zh": ["举报频道", "电报诈骗举报", "请封禁这个群组"],
}

# Sentences with a {link} slot, and sentences without one, per language.
WITH_LINK: dict[str, list[str]] = {
    "en": [
        "Hello, I want to report the channel {link}. It spreads terrorist propaganda and calls for violence.",
        "This group {link} is selling stolen credit cards and personal data of real people.",
        "The bot {link} sends scam messages to everyone who joins and promises a fake crypto giveaway.",
        "Please have a look at {link}, they post videos of real violence every single day.",
        "My photos were published without consent in {link}, I am the person in them.",
    ],
    "ar": [
        "مرحبا، أريد الإبلاغ عن القناة {link} لأنها تنشر محتوى إرهابيا وتحرض على العنف.",
        "هذه المجموعة {link} تبيع بيانات شخصية مسروقة وأرقام بطاقات بنكية.",
        "البوت {link} يرسل رسائل احتيال إلى كل من ينضم إلى المجموعة.",
        "أرجو مراجعة {link} فهم ينشرون مقاطع عنف حقيقية كل يوم.",
    ],
    "fr": [
        "Bonjour, je souhaite signaler la chaîne {link} qui diffuse de la propagande violente.",
        "Ce groupe {link} vend des données personnelles volées et des numéros de carte bancaire.",
        "Le robot {link} envoie des messages frauduleux à tous les nouveaux membres.",
        "Merci de regarder {link}, ils publient des vidéos de violence tous les jours.",
    ],
    "de": [
        "Guten Tag, ich möchte den Kanal {link} melden, dort wird offen zu Gewalt aufgerufen.",
        "Diese Gruppe {link} verkauft gestohlene Kreditkartendaten und Ausweiskopien.",
        "Der Bot {link} verschickt betrügerische Nachrichten an alle neuen Mitglieder.",
        "Bitte prüfen Sie {link}, dort werden täglich Gewaltvideos gepostet.",
    ],
    "ru": [
        "Здравствуйте, прошу заблокировать канал {link}, там публикуют призывы к насилию.",
        "Эта группа {link} продаёт украденные персональные данные и номера банковских карт.",
        "Бот {link} рассылает мошеннические сообщения всем новым участникам.",
        "Посмотрите, пожалуйста, {link}, там каждый день выкладывают видео с насилием.",
    ],
    "tr": [
        "Merhaba, {link} kanalını şikayet etmek istiyorum, şiddet içerikli paylaşımlar yapıyorlar.",
        "Bu grup {link} çalıntı kredi kartı bilgileri ve kimlik fotoğrafları satıyor.",
        "{link} botu gruba katılan herkese dolandırıcılık mesajları gönderiyor.",
        "Lütfen {link} adresine bakın, her gün gerçek şiddet videoları paylaşıyorlar.",
    ],
    "es": [
        "Hola, quiero denunciar el canal {link} porque difunde propaganda terrorista.",
        "Este grupo {link} vende datos personales robados y números de tarjetas de crédito.",
        "El bot {link} envía mensajes fraudulentos a todos los miembros nuevos.",
        "Por favor revisen {link}, publican vídeos de violencia real todos los días.",
    ],
    "id": [
        "Halo, saya ingin melaporkan kanal {link} yang menyebarkan propaganda kekerasan.",
        "Grup {link} ini menjual data pribadi curian dan nomor kartu kredit orang lain.",
        "Bot {link} mengirim pesan penipuan kepada semua anggota baru.",
        "Tolong periksa {link}, mereka mengunggah video kekerasan setiap hari.",
    ],
    "fa": [
        "سلام، می‌خواهم کانال {link} را گزارش کنم که محتوای خشونت‌آمیز منتشر می‌کند.",
        "این گروه {link} اطلاعات شخصی دزدیده شده و شماره کارت بانکی می‌فروشد.",
        "ربات {link} برای همه اعضای جدید پیام‌های کلاهبرداری می‌فرستد.",
        "لطفا {link} را بررسی کنید، هر روز ویدیوهای خشونت واقعی منتشر می‌کنند.",
    ],
    "zh": [
        "你好，我要举报频道 {link}，该频道一直在传播恐怖主义宣传内容。",
        "这个群组 {link} 在出售被盗的个人信息和银行卡号码。",
        "机器人 {link} 向每一个新成员发送诈骗信息。",
        "请查看 {link}，他们每天都在发布真实的暴力视频。",
    ],
}

PLAIN: dict[str, list[str]] = {
    "en": [
        "I have reported this twice already and nothing happened.",
        "Thank you for your help.",
        "There are thousands of members and it grows every hour.",
    ],
    "ar": ["لقد أبلغت عن هذا من قبل ولم يتغير شيء.", "شكرا لمساعدتكم.", "عدد الأعضاء يزداد كل ساعة."],
    "fr": [
        "J'ai déjà fait un signalement la semaine dernière, sans réponse.",
        "Merci d'avance pour votre aide.",
        "Il y a des milliers de membres et cela augmente.",
    ],
    "de": [
        "Ich habe das schon zweimal gemeldet, aber es ist nichts passiert.",
        "Vielen Dank für Ihre Hilfe.",
        "Die Gruppe hat tausende Mitglieder und wächst stündlich.",
    ],
    "ru": [
        "Я уже жаловался на этот канал, но он до сих пор работает.",
        "Спасибо за помощь.",
        "Там тысячи подписчиков, и их становится больше.",
    ],
    "tr": [
        "Bu kanalı daha önce de bildirdim ama hiçbir şey değişmedi.",
        "Yardımınız için teşekkürler.",
        "Binlerce üyesi var ve her saat artıyor.",
    ],
    "es": [
        "Ya lo denuncié la semana pasada y sigue activo.",
        "Gracias por su ayuda.",
        "Tiene miles de miembros y crece cada hora.",
    ],
    "id": [
        "Saya sudah melaporkan ini sebelumnya tetapi belum ada tindakan.",
        "Terima kasih atas bantuannya.",
        "Anggotanya ribuan dan terus bertambah.",
    ],
    "fa": [
        "من قبلا هم این کانال را گزارش داده‌ام ولی هنوز فعال است.",
        "از کمک شما متشکرم.",
        "هزاران عضو دارد و هر ساعت بیشتر می‌شود.",
    ],
    "zh": [
        "我之前已经举报过这个频道，但它仍然在运行。",
        "谢谢你们的帮助。",
        "这个群组有几千名成员，而且每小时都在增加。",
    ],
}

FOLLOW_UP: dict[str, str] = {
    "en": "Any news about my report? The channel is still online.",
    "ar": "هل من جديد بخصوص بلاغي؟ القناة ما زالت تعمل.",
    "fr": "Du nouveau concernant mon signalement ? La chaîne est toujours en ligne.",
    "de": "Gibt es etwas Neues zu meiner Meldung? Der Kanal ist immer noch online.",
    "ru": "Есть новости по моей жалобе? Канал всё ещё работает.",
    "tr": "Şikayetimle ilgili bir gelişme var mı? Kanal hâlâ açık.",
    "es": "¿Hay novedades sobre mi denuncia? El canal sigue en línea.",
    "id": "Apakah ada kabar tentang laporan saya? Kanalnya masih aktif.",
    "fa": "خبری از گزارش من نیست؟ کانال هنوز فعال است.",
    "zh": "我的举报有进展吗？这个频道仍然在线。",
}

NAMES: dict[str, list[str]] = {
    "en": ["Emily Carter", "James O'Neill", "Sarah Lee", ""],
    "ar": ["أحمد علي", "فاطمة حسن", "Omar Haddad"],
    "fr": ["Élodie Martin", "Jean-Luc Bernard", "Camille Roux"],
    "de": ["Jürgen Schäfer", "Anna Müller", "Lukas Weber"],
    "ru": ["Иван Петров", "Мария Смирнова", "Dmitry Volkov"],
    "tr": ["Ayşe Yılmaz", "Mehmet Öztürk", "Can Demir"],
    "es": ["María García", "José Martínez", "Lucía Fernández"],
    "id": ["Budi Santoso", "Siti Rahayu", "Agus Pratama"],
    "fa": ["علی رضایی", "زهرا محمدی", "Reza Karimi"],
    "zh": ["王伟", "李娜", "Zhang Wei"],
}
DOMAINS: dict[str, list[str]] = {
    "en": ["gmail.com", "outlook.com", "yahoo.com"],
    "ar": ["gmail.com", "hotmail.com", "yahoo.com"],
    "fr": ["orange.fr", "free.fr", "gmail.com"],
    "de": ["web.de", "gmx.de", "t-online.de"],
    "ru": ["mail.ru", "yandex.ru", "gmail.com"],
    "tr": ["gmail.com", "hotmail.com", "yandex.com.tr"],
    "es": ["gmail.com", "hotmail.es", "yahoo.es"],
    "id": ["gmail.com", "yahoo.co.id"],
    "fa": ["gmail.com", "yahoo.com", "chmail.ir"],
    "zh": ["qq.com", "163.com", "gmail.com"],
}
# About how often each language is written to the desk (a guess; English dominates).
LANGUAGE_WEIGHTS = {"en": 30, "ar": 10, "fr": 8, "de": 7, "ru": 10, "tr": 7, "es": 8, "id": 6, "fa": 7, "zh": 7}

WORDS = [
    "news",
    "daily",
    "free",
    "crypto",
    "leaks",
    "market",
    "truth",
    "zone",
    "world",
    "deals",
    "signal",
    "media",
    "hub",
    "info",
    "drop",
    "vip",
    "club",
    "flash",
    "global",
    "voice",
    "front",
    "union",
]

# --- Links ------------------------------------------------------------------------------------

# How a channel or bot username gets written, with rough frequencies.
_NAME_SPELLINGS = [
    (20, "https://t.me/{n}"),
    (12, "t.me/{n}"),
    (10, "@{n}"),
    (5, "http://telegram.me/{n}"),
    (3, "https://telegram.dog/{n}"),
    (4, "www.t.me/{n}"),
    (4, "https://t.me/s/{n}"),
    (6, "https://t.me/{n}/{msg}"),
    (3, "https://t.me/{n}?start=ref{msg}"),
    (3, "tg://resolve?domain={n}"),
    (2, "{n}.t.me"),
    (5, "t[.]me/{n}"),
    (4, "hxxps://t[.]me/{n}"),
    (2, "t(.)me/{n}"),
    (2, "hxxp://telegram[.]me/{N}"),
    (3, "HTTPS://T.ME/{N}"),
]
_NAME_TOTAL = sum(w for w, _ in _NAME_SPELLINGS)


def _weighted(rng: random.Random, items: list[tuple[int, str]], total: int) -> str:
    pick = rng.randrange(total)
    for weight, item in items:
        pick -= weight
        if pick < 0:
            return item
    return items[-1][1]


def spell_name(rng: random.Random, name: str) -> str:
    template = _weighted(rng, _NAME_SPELLINGS, _NAME_TOTAL)
    upper = "".join(c.upper() if rng.random() < 0.4 else c for c in name)
    return template.format(n=name, N=upper, msg=rng.randrange(2, 90000))


def _hash(rng: random.Random, length: int = 22) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
    first = rng.choice(alphabet[:62])  # not all digits, so never a phone-number link
    return first + "".join(rng.choice(alphabet) for _ in range(length - 1))


def other_link(rng: random.Random) -> str:
    """An entity that is not a plain username: invites, sticker and emoji sets, private chats."""
    kind = rng.randrange(8)
    if kind == 0:
        return f"https://t.me/+{_hash(rng)}"
    if kind == 1:
        return f"t.me/joinchat/{_hash(rng)}"
    if kind == 2:
        return f"tg://join?invite={_hash(rng)}"
    if kind == 3:
        return f"https://t.me/addstickers/{rng.choice(WORDS).capitalize()}{rng.choice(WORDS)}{rng.randrange(100)}"
    if kind == 4:
        return f"t.me/addemoji/{rng.choice(WORDS)}_{rng.choice(WORDS)}"
    if kind == 5:
        return f"https://t.me/c/{rng.randrange(10**9, 2 * 10**9)}/{rng.randrange(1, 5000)}"
    if kind == 6:
        # A look-alike host (Cyrillic "е" in "me") around a real-looking name.
        return f"https://t.m\u0435/{rng.choice(WORDS)}_{rng.choice(WORDS)}{rng.randrange(10, 99)}"
    return f"https://t.me/{rng.choice(WORDS)}{rng.choice(WORDS)}_bot"


def make_channel_pool(rng: random.Random, size: int) -> list[str]:
    names: set[str] = set()
    while len(names) < size:
        a, b = rng.choice(WORDS), rng.choice(WORDS)
        style = rng.randrange(4)
        if style == 0:
            name = f"{a}_{b}"
        elif style == 1:
            name = f"{a}{b}{rng.randrange(1, 999)}"
        elif style == 2:
            name = f"{a}_{b}_bot"
        else:
            name = f"{a}{b}_official"
        if 5 <= len(name) <= 32:
            names.add(name)
    return sorted(names)


# --- Small binary attachments -----------------------------------------------------------------


def tiny_png(rng: random.Random, side: int = 48) -> bytes:
    """A valid RGB PNG with noisy pixels (a stand-in for a screenshot)."""
    rows = b"".join(b"\x00" + rng.randbytes(side * 3) for _ in range(side))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def tiny_pdf(text: str) -> bytes:
    """A one-page PDF with a line of ASCII text and a correct xref table."""
    safe = "".join(c for c in text if 32 <= ord(c) < 127 and c not in "()\\")[:80]
    stream = f"BT /F1 12 Tf 72 720 Td ({safe}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


# --- Mails ------------------------------------------------------------------------------------


@dataclass
class Sender:
    address: str
    name: str
    language: str
    sent: list[tuple[str, str]] = field(default_factory=list)  # (Message-ID, subject) of earlier mails


@dataclass
class GeneratedMail:
    index: int
    raw: bytes
    sender: str
    message_id: str
    language: str
    kind: str  # report, reply, html, forward, auto, dsn
    storm: bool
    attachments: int


@dataclass
class Mix:
    """Shares of the generated traffic (fractions of all mails)."""

    storm: float = 0.30
    reply: float = 0.08
    auto: float = 0.02
    dsn: float = 0.005
    html_alternative: float = 0.20
    html_only: float = 0.06
    attachment: float = 0.10
    forward: float = 0.03


class MailFactory:
    def __init__(self, seed: int, n: int, mix: Mix | None = None) -> None:
        self.rng = random.Random(seed)
        self.mix = mix or Mix()
        self.n = n
        self.channels = make_channel_pool(self.rng, max(20, n // 3))
        self.storm_channel = "nightfall_media_official"
        langs = list(LANGUAGE_WEIGHTS)
        self.languages = langs
        self.language_weights = [LANGUAGE_WEIGHTS[x] for x in langs]
        self.senders = [self._new_sender(i) for i in range(max(10, n // 4))]
        self.start = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
        self.clock = self.start

    def _new_sender(self, i: int) -> Sender:
        rng = self.rng
        language = rng.choices(self.languages, self.language_weights)[0]
        name = rng.choice(NAMES[language])
        local = f"{rng.choice(WORDS)}.{rng.choice(WORDS)}{i}"
        return Sender(f"{local}@{rng.choice(DOMAINS[language])}", name, language)

    def _popular_channel(self) -> str:
        # A long tail: a few channels get many reports, most get one or two.
        index = min(int(self.rng.paretovariate(1.2)) - 1, len(self.channels) - 1)
        return self.channels[(index * 7919) % len(self.channels)] if index else self.rng.choice(self.channels)

    def _boundary(self) -> str:
        return "=_bench_" + self.rng.randbytes(12).hex()

    def _base_headers(self, msg: EmailMessage, sender: Sender, subject: str, message_id: str) -> None:
        rng = self.rng
        self.clock += timedelta(seconds=rng.randrange(1, 40))
        relay = rng.choice(["mx1", "mx2", "smtp-in"])
        msg["Return-Path"] = f"<{sender.address}>"
        msg["Received"] = (
            f"from {relay}.{sender.address.split('@')[1]} ({relay}.{sender.address.split('@')[1]} "
            f"[192.0.2.{rng.randrange(1, 254)}]) by mx.abusedesk.localhost with ESMTPS id {rng.randbytes(6).hex()}; "
            f"{format_datetime(self.clock)}"
        )
        msg["Received"] = (
            f"by 10.{rng.randrange(255)}.{rng.randrange(255)}.{rng.randrange(255)} with HTTP; {format_datetime(self.clock)}"
        )
        msg["Authentication-Results"] = (
            f"mx.abusedesk.localhost; spf=pass smtp.mailfrom={sender.address}; dkim=pass header.d={sender.address.split('@')[1]}"
        )
        msg["From"] = Address(sender.name, addr_spec=sender.address) if sender.name else sender.address
        msg["To"] = ABUSE_ADDRESS
        msg["Subject"] = subject
        msg["Date"] = format_datetime(self.clock)
        msg["Message-ID"] = message_id
        if rng.random() < 0.5:
            msg["X-Mailer"] = rng.choice(
                ["Apple Mail (2.3774)", "Microsoft Outlook 16.0", "Thunderbird 128.3", "K-9 Mail"]
            )

    def _body_text(self, language: str, links: list[str]) -> str:
        rng = self.rng
        sentences = []
        for link in links:
            sentences.append(rng.choice(WITH_LINK[language]).format(link=link))
        for _ in range(rng.randrange(0, 3)):
            sentences.insert(rng.randrange(len(sentences) + 1), rng.choice(PLAIN[language]))
        paragraphs = [" ".join(sentences[i : i + 2]) for i in range(0, len(sentences), 2)]
        signature = "\n\n-- \nSent from my phone" if rng.random() < 0.3 else ""
        return "\n\n".join(paragraphs) + signature + "\n"

    def _html(self, language: str, links: list[str]) -> str:
        rng = self.rng
        items = []
        for link in links:
            href = (
                link
                if "://" in link
                else f"https://{link.lstrip('@')}"
                if not link.startswith("@")
                else f"https://t.me/{link[1:]}"
            )
            sentence = rng.choice(WITH_LINK[language]).format(
                link=f'<a href="{href}">{rng.choice(["this", "link", "here", link])}</a>'
            )
            items.append(f"<p>{sentence}</p>")
        items.append(f'<p style="color:#555">{rng.choice(PLAIN[language])}</p>')
        return (
            '<!DOCTYPE html><html><head><meta charset="utf-8"><style>p{font-family:Arial}</style></head>'
            f'<body dir="auto"><div>{"".join(items)}</div><img src="https://tracker.example/p.gif" width=1 height=1>'
            "<script>alert(1)</script></body></html>\n"
        )

    def _links(self, storm: bool) -> list[str]:
        rng = self.rng
        links = []
        if storm:
            links.append(spell_name(rng, self.storm_channel))
        count = rng.choices([0, 1, 2, 3], [2 if storm else 0, 70, 20, 8])[0]
        for _ in range(count):
            links.append(spell_name(rng, self._popular_channel()) if rng.random() < 0.85 else other_link(rng))
        if not links:
            links.append(spell_name(rng, self._popular_channel()))
        return links

    def _set_content(self, part: EmailMessage, text: str, subtype: str = "plain") -> None:
        cte = self.rng.choice([None, None, "8bit", "quoted-printable", "base64"])
        if cte == "8bit" and not text.isascii():
            part.set_content(text, subtype=subtype, charset="utf-8", cte="8bit")
        elif cte in ("quoted-printable", "base64"):
            part.set_content(text, subtype=subtype, charset="utf-8", cte=cte)
        else:
            part.set_content(text, subtype=subtype, charset="utf-8")

    def _fix_boundaries(self, msg: EmailMessage) -> None:
        for part in msg.walk():
            if part.get_content_maintype() == "multipart":
                part.set_boundary(self._boundary())

    def mail(self, index: int) -> GeneratedMail:
        rng, mix = self.rng, self.mix
        roll = rng.random()
        earlier = [s for s in self.senders if s.sent]
        if roll < mix.auto + mix.dsn:
            return self._automatic(index, dsn=roll < mix.dsn)
        if roll < mix.auto + mix.dsn + mix.reply and earlier:
            return self._reply(index, rng.choice(earlier))
        sender = rng.choice(self.senders)
        language = sender.language
        # The storm share is of all mails, and replies and automatic mail are never part of it.
        storm = rng.random() < mix.storm / (1 - mix.auto - mix.dsn - mix.reply)
        links = self._links(storm)
        subject = rng.choice(SUBJECTS[language])
        if rng.random() < 0.15:
            subject += f" {links[0]}"
        message_id = f"<{rng.randbytes(8).hex()}.{index}@{sender.address.split('@')[1]}>"
        msg = EmailMessage(policy=policy.default)
        self._base_headers(msg, sender, subject, message_id)
        text = self._body_text(language, links)
        kind = "report"
        shape = rng.random()
        if shape < mix.html_only:
            self._set_content(msg, self._html(language, links), "html")
            kind = "html"
        elif shape < mix.html_only + mix.html_alternative:
            self._set_content(msg, text)
            msg.add_alternative(self._html(language, links), subtype="html")
            kind = "html"
        else:
            self._set_content(msg, text)
        attachments = 0
        if rng.random() < mix.attachment:
            for _ in range(rng.choice([1, 1, 2])):
                if rng.random() < 0.7:
                    msg.add_attachment(
                        tiny_png(rng, rng.choice([32, 48, 64])),
                        maintype="image",
                        subtype="png",
                        filename=f"screenshot_{rng.randrange(1000, 9999)}.png",
                    )
                else:
                    msg.add_attachment(
                        tiny_pdf(" ".join(links)),
                        maintype="application",
                        subtype="pdf",
                        filename=rng.choice(["evidence.pdf", "rapport.pdf", "жалоба.pdf", "證據.pdf"]),
                    )
                attachments += 1
        if rng.random() < mix.forward:
            msg.add_attachment(self._forwarded(rng), filename="forwarded.eml")
            kind = "forward"
        self._fix_boundaries(msg)
        sender.sent.append((message_id, subject))
        return GeneratedMail(
            index, msg.as_bytes(policy=policy.default), sender.address, message_id, language, kind, storm, attachments
        )

    def _forwarded(self, rng: random.Random) -> EmailMessage:
        inner = EmailMessage(policy=policy.default)
        inner["From"] = "Crypto Giveaway <promo@giveaway.example>"
        inner["To"] = "victim@example.org"
        inner["Subject"] = "You won 2 BTC"
        inner["Date"] = format_datetime(self.clock - timedelta(days=1))
        inner["Message-ID"] = f"<{rng.randbytes(6).hex()}@giveaway.example>"
        inner.set_content(f"Claim your prize now: {spell_name(rng, self._popular_channel())}\nOnly today!\n")
        return inner

    def _reply(self, index: int, sender: Sender) -> GeneratedMail:
        rng = self.rng
        parent_id, parent_subject = rng.choice(sender.sent)
        message_id = f"<{rng.randbytes(8).hex()}.{index}@{sender.address.split('@')[1]}>"
        subject = parent_subject if parent_subject.lower().startswith("re:") else f"Re: {parent_subject}"
        msg = EmailMessage(policy=policy.default)
        self._base_headers(msg, sender, subject, message_id)
        msg["In-Reply-To"] = parent_id
        msg["References"] = parent_id
        text = FOLLOW_UP[sender.language]
        if rng.random() < 0.5:
            text += "\n" + rng.choice(WITH_LINK[sender.language]).format(link=spell_name(rng, self._popular_channel()))
        text += (
            f"\n\nOn {format_datetime(self.clock - timedelta(hours=3))}, {sender.address} wrote:\n> "
            + rng.choice(PLAIN[sender.language])
            + "\n"
        )
        self._set_content(msg, text)
        self._fix_boundaries(msg)
        sender.sent.append((message_id, subject))
        return GeneratedMail(
            index, msg.as_bytes(policy=policy.default), sender.address, message_id, sender.language, "reply", False, 0
        )

    def _automatic(self, index: int, *, dsn: bool) -> GeneratedMail:
        rng = self.rng
        sender = rng.choice(self.senders)
        message_id = f"<{rng.randbytes(8).hex()}.{index}@{sender.address.split('@')[1]}>"
        msg = EmailMessage(policy=policy.default)
        if dsn:
            daemon = Sender(f"MAILER-DAEMON@{sender.address.split('@')[1]}", "Mail Delivery System", "en")
            self._base_headers(msg, daemon, "Undelivered Mail Returned to Sender", message_id)
            msg["Auto-Submitted"] = "auto-replied"
            msg.set_content(
                f"This is the mail system at host {sender.address.split('@')[1]}.\n\n"
                f"I'm sorry to have to inform you that your message could not be delivered.\n\n<{sender.address}>: mailbox full\n"
            )
            domain = sender.address.split("@")[1]
            status = EmailMessage(policy=policy.default)
            status["Content-Type"] = "message/delivery-status"
            for block in (
                {"Reporting-MTA": f"dns; mx.{domain}", "Arrival-Date": format_datetime(self.clock)},
                {"Final-Recipient": f"rfc822; {sender.address}", "Action": "failed", "Status": "5.2.2"},
            ):
                fields = EmailMessage(policy=policy.default)
                for name, value in block.items():
                    fields[name] = value
                status.attach(fields)
            msg.make_mixed()
            msg.attach(status)
            msg.set_type("multipart/report")
            msg.set_param("report-type", "delivery-status")
            sender_address, kind = daemon.address, "dsn"
        else:
            self._base_headers(msg, sender, f"Automatic reply: {rng.choice(SUBJECTS[sender.language])}", message_id)
            msg["Auto-Submitted"] = "auto-replied"
            msg["X-Autoreply"] = "yes"
            msg.set_content(f"I am out of the office until {format_datetime(self.clock + timedelta(days=7))[:16]}.\n")
            sender_address, kind = sender.address, "auto"
        self._fix_boundaries(msg)
        return GeneratedMail(
            index, msg.as_bytes(policy=policy.default), sender_address, message_id, sender.language, kind, False, 0
        )


def generate(n: int, seed: int = 1, mix: Mix | None = None) -> list[GeneratedMail]:
    factory = MailFactory(seed, n, mix)
    return [factory.mail(i) for i in range(n)]


def big_mail(attachment_bytes: int, seed: int = 1) -> bytes:
    """One report with a large (incompressible) attachment and a text full of links."""
    rng = random.Random(seed)
    msg = EmailMessage(policy=policy.default)
    msg["From"] = Address("Large Evidence", addr_spec="evidence.sender@example.org")
    msg["To"] = ABUSE_ADDRESS
    msg["Subject"] = "Evidence archive for https://t.me/nightfall_media_official"
    msg["Date"] = format_datetime(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    msg["Message-ID"] = f"<big.{rng.randbytes(8).hex()}@example.org>"
    links = [spell_name(rng, name) for name in make_channel_pool(rng, 40)]
    msg.set_content("Recording of the channels below, full evidence attached.\n\n" + "\n".join(links) + "\n")
    payload = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + rng.randbytes(attachment_bytes - 15)
    msg.add_attachment(payload, maintype="application", subtype="pdf", filename="evidence-recording.pdf")
    for part in msg.walk():
        if part.get_content_maintype() == "multipart":
            part.set_boundary("=_bench_big_" + rng.randbytes(8).hex())
    return msg.as_bytes(policy=policy.default)
