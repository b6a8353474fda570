<?php
// An unchanged PHP application, as people run them: PHP's native sessions (session_start(),
// $_SESSION, the PHPSESSID cookie). It knows nothing of minisession. For `php -S`; the tests
// put it behind minisession's gateway (tests/test_gateway_backends.py).
//   /counter             counts this PHP session's requests
//   /login?user=NAME     logs NAME in, with a new session id (session_regenerate_id)
//   /whoami              who this PHP session is, and the Cookie header PHP got
header('Content-Type: application/json');
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
session_start();
switch ($path) {
    case '/counter':
        $_SESSION['count'] = ($_SESSION['count'] ?? 0) + 1;
        echo json_encode(['count' => $_SESSION['count'], 'user' => $_SESSION['user'] ?? null,
                          'session' => session_id()]);
        break;
    case '/login':
        $previous = session_id();
        session_regenerate_id(true);  // the old id is deleted: only the new one works now
        $_SESSION['user'] = $_GET['user'] ?? 'someone';
        echo json_encode(['user' => $_SESSION['user'], 'session' => session_id(),
                          'previous' => $previous]);
        break;
    case '/whoami':
        echo json_encode(['user' => $_SESSION['user'] ?? null, 'session' => session_id(),
                          'cookie' => $_SERVER['HTTP_COOKIE'] ?? null]);
        break;
    default:
        http_response_code(404);
        echo json_encode(['error' => 'not_found']);
}
