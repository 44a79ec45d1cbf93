from django.conf import settings


def provider_banner(request):
    """Lets every page say plainly when answers come from the simulated provider."""
    return {"ai_simulated": settings.AI_SIMULATED}
