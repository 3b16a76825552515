from django.apps import AppConfig


class EmbeddingsConfig(AppConfig):
    name = "embeddings"
    verbose_name = "Embeddings"

    def ready(self) -> None:
        # Chat answers grounded in the user's documents search them through this app; ai_services
        # sits below embeddings in the import layering, so the retriever is handed to it here.
        from ai_services.services.grounding import retriever_register
        from embeddings.retrieval import embedding_retrieve

        retriever_register(embedding_retrieve)
