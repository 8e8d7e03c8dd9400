from celery import shared_task


@shared_task
def add(x, y):
    return x + y


@shared_task
def divide(a, b):
    return a / b


@shared_task
def send_invoice_email(order_id, note=""):
    return {"order_id": order_id, "sent": True, "note": note}
