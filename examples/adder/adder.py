class Adder:
    def perform(self, a: float, b: float) -> float:
        """Add two numbers.

        :param a: first number
        :param b: second number
        :return: their sum
        """
        return a + b

    def docs_input_example(self) -> dict:
        """An example input shown on the Swagger page."""
        return {"a": 40, "b": 2}
