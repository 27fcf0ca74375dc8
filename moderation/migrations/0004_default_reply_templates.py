from __future__ import annotations

from django.db import migrations
from django.utils import timezone

# Default reply templates: (name, purpose, language, subject, body). Placeholders are filled as
# data by moderation.replies; acknowledgements may use only {case_reference}. Leads edit these
# in the workspace or in admin; this migration never overwrites an existing row.
TEMPLATES = [
    # English
    ("acknowledgement", "acknowledgement", "en", "We received your report",
     "Hello,\n\nThank you for writing to us. Your report has been received and filed under {case_reference}. "
     "A moderator will review it; we will write again when we have decided.\n\n"
     "Please do not reply to this automatic message unless you have something to add. "
     "Keep {case_reference} in the subject when you do.\n\nThe abuse desk"),
    ("blocked", "blocked", "en", "Your report {case_reference}: action taken",
     "Hello {reporter_name},\n\nThank you for your report. After review, we have taken action.\n\n"
     "Reported:\n{entity_list}\n\nDecision: {decision}\nPolicy: {category}\n\n"
     "If you have more information, reply to this message.\n\nThe abuse desk"),
    ("declined", "declined", "en", "Your report {case_reference}: no action taken",
     "Hello {reporter_name},\n\nThank you for your report. After review, we have not taken action.\n\n"
     "Reported:\n{entity_list}\n\nDecision: {decision}\nReason: {category}\n\n"
     "If you have more information that could change this decision, reply to this message.\n\nThe abuse desk"),
    # French
    ("acknowledgement", "acknowledgement", "fr", "Nous avons bien reçu votre signalement",
     "Bonjour,\n\nMerci de nous avoir écrit. Votre signalement a bien été reçu et enregistré sous la référence "
     "{case_reference}. Un modérateur va l'examiner ; nous vous écrirons de nouveau une fois la décision prise.\n\n"
     "Merci de ne pas répondre à ce message automatique, sauf si vous avez des éléments à ajouter. "
     "Dans ce cas, gardez {case_reference} dans l'objet.\n\nLe service des signalements"),
    ("blocked", "blocked", "fr", "Votre signalement {case_reference} : mesure prise",
     "Bonjour {reporter_name},\n\nMerci pour votre signalement. Après examen, nous avons pris une mesure.\n\n"
     "Éléments signalés :\n{entity_list}\n\nDécision : {decision}\nRègle concernée : {category}\n\n"
     "Si vous avez d'autres informations, répondez simplement à ce message.\n\nLe service des signalements"),
    ("declined", "declined", "fr", "Votre signalement {case_reference} : aucune mesure prise",
     "Bonjour {reporter_name},\n\nMerci pour votre signalement. Après examen, nous n'avons pris aucune mesure.\n\n"
     "Éléments signalés :\n{entity_list}\n\nDécision : {decision}\nMotif : {category}\n\n"
     "Si vous disposez d'informations susceptibles de modifier cette décision, répondez à ce message.\n\n"
     "Le service des signalements"),
    # German
    ("acknowledgement", "acknowledgement", "de", "Wir haben Ihre Meldung erhalten",
     "Guten Tag,\n\nvielen Dank für Ihre Nachricht. Ihre Meldung ist bei uns eingegangen und unter "
     "{case_reference} erfasst. Ein Moderator wird sie prüfen; wir melden uns, sobald eine Entscheidung gefallen ist.\n\n"
     "Bitte antworten Sie auf diese automatische Nachricht nur, wenn Sie etwas ergänzen möchten, "
     "und lassen Sie {case_reference} dabei im Betreff stehen.\n\nIhr Meldeteam"),
    ("blocked", "blocked", "de", "Ihre Meldung {case_reference}: Maßnahme ergriffen",
     "Guten Tag {reporter_name},\n\nvielen Dank für Ihre Meldung. Nach Prüfung haben wir eine Maßnahme ergriffen.\n\n"
     "Gemeldet:\n{entity_list}\n\nEntscheidung: {decision}\nRichtlinie: {category}\n\n"
     "Wenn Sie weitere Informationen haben, antworten Sie einfach auf diese Nachricht.\n\nIhr Meldeteam"),
    ("declined", "declined", "de", "Ihre Meldung {case_reference}: keine Maßnahme",
     "Guten Tag {reporter_name},\n\nvielen Dank für Ihre Meldung. Nach Prüfung haben wir keine Maßnahme ergriffen.\n\n"
     "Gemeldet:\n{entity_list}\n\nEntscheidung: {decision}\nBegründung: {category}\n\n"
     "Wenn Sie Informationen haben, die diese Entscheidung ändern könnten, antworten Sie auf diese Nachricht.\n\n"
     "Ihr Meldeteam"),
    # Arabic
    ("acknowledgement", "acknowledgement", "ar", "لقد استلمنا بلاغك",
     "مرحبًا،\n\nشكرًا لتواصلك معنا. لقد استلمنا بلاغك وسجّلناه تحت الرقم {case_reference}. "
     "سيراجعه أحد المشرفين، وسنراسلك مجددًا عند اتخاذ القرار.\n\n"
     "يُرجى عدم الرد على هذه الرسالة التلقائية إلا إذا كانت لديك معلومات إضافية، "
     "وفي هذه الحالة أبقِ {case_reference} في عنوان الرسالة.\n\nفريق البلاغات"),
    ("blocked", "blocked", "ar", "بلاغك {case_reference}: تم اتخاذ إجراء",
     "مرحبًا {reporter_name}،\n\nشكرًا على بلاغك. بعد المراجعة، اتخذنا إجراءً.\n\n"
     "ما أبلغت عنه:\n{entity_list}\n\nالقرار: {decision}\nالسياسة: {category}\n\n"
     "إذا كانت لديك معلومات إضافية، يمكنك الرد على هذه الرسالة.\n\nفريق البلاغات"),
    ("declined", "declined", "ar", "بلاغك {case_reference}: لم يُتخذ أي إجراء",
     "مرحبًا {reporter_name}،\n\nشكرًا على بلاغك. بعد المراجعة، لم نتخذ أي إجراء.\n\n"
     "ما أبلغت عنه:\n{entity_list}\n\nالقرار: {decision}\nالسبب: {category}\n\n"
     "إذا كانت لديك معلومات قد تغيّر هذا القرار، يمكنك الرد على هذه الرسالة.\n\nفريق البلاغات"),
    # Russian
    ("acknowledgement", "acknowledgement", "ru", "Мы получили вашу жалобу",
     "Здравствуйте!\n\nСпасибо, что написали нам. Ваша жалоба получена и зарегистрирована под номером "
     "{case_reference}. Модератор её рассмотрит; мы напишем вам снова, когда будет принято решение.\n\n"
     "Пожалуйста, не отвечайте на это автоматическое письмо, если вам нечего добавить. "
     "Если же хотите что-то добавить, сохраните {case_reference} в теме письма.\n\nСлужба обработки жалоб"),
    ("blocked", "blocked", "ru", "Ваша жалоба {case_reference}: меры приняты",
     "Здравствуйте, {reporter_name}!\n\nСпасибо за вашу жалобу. После проверки мы приняли меры.\n\n"
     "Вы сообщили о:\n{entity_list}\n\nРешение: {decision}\nПравило: {category}\n\n"
     "Если у вас есть дополнительная информация, просто ответьте на это письмо.\n\nСлужба обработки жалоб"),
    ("declined", "declined", "ru", "Ваша жалоба {case_reference}: меры не приняты",
     "Здравствуйте, {reporter_name}!\n\nСпасибо за вашу жалобу. После проверки мы не стали принимать меры.\n\n"
     "Вы сообщили о:\n{entity_list}\n\nРешение: {decision}\nПричина: {category}\n\n"
     "Если у вас есть сведения, которые могут изменить это решение, ответьте на это письмо.\n\n"
     "Служба обработки жалоб"),
    # Spanish
    ("acknowledgement", "acknowledgement", "es", "Hemos recibido tu denuncia",
     "Hola:\n\nGracias por escribirnos. Hemos recibido tu denuncia y la hemos registrado con la referencia "
     "{case_reference}. Un moderador la revisará; te volveremos a escribir cuando hayamos tomado una decisión.\n\n"
     "Por favor, no respondas a este mensaje automático salvo que quieras añadir algo. "
     "En ese caso, mantén {case_reference} en el asunto.\n\nEl equipo de denuncias"),
    ("blocked", "blocked", "es", "Tu denuncia {case_reference}: hemos tomado medidas",
     "Hola, {reporter_name}:\n\nGracias por tu denuncia. Tras revisarla, hemos tomado medidas.\n\n"
     "Lo que denunciaste:\n{entity_list}\n\nDecisión: {decision}\nNorma: {category}\n\n"
     "Si tienes más información, responde a este mensaje.\n\nEl equipo de denuncias"),
    ("declined", "declined", "es", "Tu denuncia {case_reference}: no hemos tomado medidas",
     "Hola, {reporter_name}:\n\nGracias por tu denuncia. Tras revisarla, no hemos tomado medidas.\n\n"
     "Lo que denunciaste:\n{entity_list}\n\nDecisión: {decision}\nMotivo: {category}\n\n"
     "Si tienes información que pueda cambiar esta decisión, responde a este mensaje.\n\nEl equipo de denuncias"),
]


def create_templates(apps, schema_editor):
    ReplyTemplate = apps.get_model("moderation", "ReplyTemplate")
    now = timezone.now()
    for name, purpose, language, subject, body in TEMPLATES:
        ReplyTemplate.objects.get_or_create(
            name=name, language=language,
            defaults={"purpose": purpose, "subject": subject, "body": body, "active": True, "updated_at": now},
        )


def remove_templates(apps, schema_editor):
    ReplyTemplate = apps.get_model("moderation", "ReplyTemplate")
    for name, _purpose, language, subject, body in TEMPLATES:
        # Only rows nobody edited or used: replies protect their template.
        ReplyTemplate.objects.filter(
            name=name, language=language, subject=subject, body=body, replies__isnull=True
        ).delete()


class Migration(migrations.Migration):
    dependencies = [("moderation", "0003_roles")]
    operations = [migrations.RunPython(create_templates, remove_templates)]
