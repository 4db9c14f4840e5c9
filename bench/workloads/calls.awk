# Many small function calls: a string helper on every line, and a recursive Fibonacci.
function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2) }
function capital(s) { return toupper(substr(s, 1, 1)) substr(s, 2) }
{ total += length(capital($1)) }
END { print total, fib(24) }
