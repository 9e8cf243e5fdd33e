"""The one exception type pure validators raise.

Its message is shown to the user verbatim (HTTP reason phrase, JSON body, page), so it is a
single readable sentence that says what was wrong and, where it helps, what to do.
"""


class ValidationError(Exception):
    def __init__(self, message: str, *, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status

    def __str__(self) -> str:
        return self.message
